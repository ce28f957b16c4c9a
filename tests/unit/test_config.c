/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* Every test runs inside a fresh temporary directory that contains vm.ini and the files it names. */
static char test_dir[PATH_MAX];

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	assert_int_equal(fputs(text, file) >= 0, 1);
	assert_int_equal(fclose(file), 0);
}

static int setup_dir(void **state)
{
	char template[] = "/tmp/smcore-config-XXXXXX";

	if (!mkdtemp(template) || !realpath(template, test_dir) || chdir(test_dir) < 0)
		return -1;
	if (mkdir("bin", 0755) < 0 || mkdir("somedir", 0755) < 0 || mkdir("plugins", 0755) < 0)
		return -1;
	write_file("vmlinux", "kernel");
	write_file("initrd.img", "initrd");
	write_file("bin/app", "app");
	write_file("bin/tool", "tool");
	return 0;
}

static int teardown_dir(void **state)
{
	char command[PATH_MAX + 16];

	if (chdir("/") < 0)
		return -1;
	snprintf(command, sizeof(command), "rm -rf '%s'", test_dir);
	return system(command) == 0 ? 0 : -1;
}

/* Return `pattern` with every "@DIR@" replaced by the test directory, in a static buffer. */
static const char *expand(const char *pattern)
{
	static char out[2048];
	size_t used = 0;

	while (*pattern && used < sizeof(out) - PATH_MAX) {
		if (!strncmp(pattern, "@DIR@", 5)) {
			used += (size_t)snprintf(out + used, sizeof(out) - used, "%s", test_dir);
			pattern += 5;
		} else {
			out[used++] = *pattern++;
		}
	}
	out[used] = '\0';
	return out;
}

#define MAX_OVERRIDES 3

struct bad_config {
	const char *ini;
	const char *overrides[MAX_OVERRIDES];
	const char *message;
};

#define MACHINE_KEYS "known keys: accelerator, memory, vcpus, cpu_template, console, plugin_dir"
#define SECTIONS "known sections: machine, kernel, initramfs, run, rootfs, device.NAME"
#define SIZE_HELP "(expected a number with an optional K, M, G or T suffix, such as 256M)"

static const struct bad_config bad_configs[] = {
	/* Sections and keys */
	{ "[mashine]\nmemory = 1G\n", { NULL },
	  "vm.ini:1: mashine: unknown section (" SECTIONS ")" },
	{ "[machine]\nvcpus = 2\n[network]\n", { NULL },
	  "vm.ini:3: network: unknown section (" SECTIONS ")" },
	{ "[machine]\nvcpus = 2\nmemroy = 1G\n", { NULL },
	  "vm.ini:3: machine.memroy: unknown key (" MACHINE_KEYS ")" },
	{ "[run]\ncommand = ls\n", { NULL },
	  "vm.ini:2: run.command: unknown key (known keys: argv, env, cwd, timeout)" },
	{ "[kernel]\nimage = vmlinux\n", { NULL },
	  "vm.ini:2: kernel.image: unknown key (known keys: kernel, initrd, cmdline)" },
	{ "[machine]\nmemory = 1G\nvcpus = 2\nmemory = 2G\n", { NULL },
	  "vm.ini:4: machine.memory: already set on line 2 (remove one of the two lines)" },
	{ "[kernel]\ncmdline = a\n[machine]\n[kernel]\ncmdline = b\n", { NULL },
	  "vm.ini:5: kernel.cmdline: already set on line 2 (remove one of the two lines)" },
	{ "memory = 1G\n", { NULL },
	  "vm.ini:1: memory: key outside a section (put it under a header such as [machine])" },
	{ "[machine]\n = 1G\n", { NULL },
	  "vm.ini:2: machine: missing key name before '='" },
	/* INI syntax */
	{ "[machine]\nvcpus\n", { NULL },
	  "vm.ini:2: invalid line 'vcpus' (expected key = value, a [section] header or a comment)" },
	{ "; comment\n[machine\nvcpus = 1\n", { NULL },
	  "vm.ini:2: section header '[machine' has no closing ']'" },
	{ "[machine] vcpus = 1\n", { NULL },
	  "vm.ini:1: unexpected text after ']' in '[machine] vcpus = 1'" },
	{ "[machine]\naccelerator = hv-kvm\n  memory = 1G\n", { NULL },
	  "vm.ini:3: machine.accelerator: indented line continues this value, but it takes one line only (remove the indentation)" },
	{ "[run]\nargv = ls\n  [machine]\n", { NULL },
	  "vm.ini:3: indented section header '[machine]' (remove the indentation)" },
	/* [machine] */
	{ "[machine]\nvcpus = 1\n\nmemory = 12X\n", { NULL },
	  "vm.ini:4: machine.memory: invalid size '12X' " SIZE_HELP },
	{ "[machine]\nmemory = 256MB\n", { NULL },
	  "vm.ini:2: machine.memory: invalid size '256MB' " SIZE_HELP },
	{ "[machine]\nmemory = 1.5G\n", { NULL },
	  "vm.ini:2: machine.memory: invalid size '1.5G' " SIZE_HELP },
	{ "[machine]\nmemory =\n", { NULL },
	  "vm.ini:2: machine.memory: invalid size '' " SIZE_HELP },
	{ "[machine]\nmemory = 8M\n", { NULL },
	  "vm.ini:2: machine.memory: size '8M' is too small (the minimum is 16M)" },
	{ "[machine]\nmemory = 16380K\n", { NULL },
	  "vm.ini:2: machine.memory: size '16380K' is too small (the minimum is 16M)" },
	{ "[machine]\nmemory = 99999999999T\n", { NULL },
	  "vm.ini:2: machine.memory: invalid size '99999999999T' " SIZE_HELP },
	{ "[machine]\nvcpus = 0\n", { NULL },
	  "vm.ini:2: machine.vcpus: 0 vCPUs is out of range (expected 1 to 32)" },
	{ "[machine]\nvcpus = 33\n", { NULL },
	  "vm.ini:2: machine.vcpus: 33 vCPUs is out of range (expected 1 to 32)" },
	{ "[machine]\nvcpus = two\n", { NULL },
	  "vm.ini:2: machine.vcpus: invalid number 'two' (expected a whole number from 1 to 32)" },
	{ "[machine]\nvcpus = -1\n", { NULL },
	  "vm.ini:2: machine.vcpus: invalid number '-1' (expected a whole number from 1 to 32)" },
	{ "[machine]\ncpu_template = max\n", { NULL },
	  "vm.ini:2: machine.cpu_template: unknown CPU template 'max' (expected host or baseline)" },
	{ "[machine]\naccelerator = plugins/hv-kvm.so\n", { NULL },
	  "vm.ini:2: machine.accelerator: invalid plugin name 'plugins/hv-kvm.so' (expected a name without '/' or spaces, such as hv-kvm)" },
	{ "[machine]\nconsole = logs/console.log\n", { NULL },
	  "vm.ini:2: machine.console: @DIR@/logs/console.log: parent directory @DIR@/logs: No such file or directory" },
	{ "[machine]\nconsole = somedir\n", { NULL },
	  "vm.ini:2: machine.console: @DIR@/somedir: is a directory (give a file name for the console output)" },
	{ "[machine]\nplugin_dir = vmlinux\n", { NULL },
	  "vm.ini:2: machine.plugin_dir: @DIR@/vmlinux: not a directory" },
	{ "[machine]\nplugin_dir = no-such-dir\n", { NULL },
	  "vm.ini:2: machine.plugin_dir: @DIR@/no-such-dir: No such file or directory" },
	/* [kernel] */
	{ "[kernel]\n# relative to the config file\nkernel = missing/vmlinux\n", { NULL },
	  "vm.ini:3: kernel.kernel: @DIR@/missing/vmlinux: No such file or directory" },
	{ "[kernel]\nkernel = ./bin/../somedir\n", { NULL },
	  "vm.ini:2: kernel.kernel: @DIR@/somedir: not a regular file" },
	{ "[kernel]\ninitrd = /nonexistent/initrd.img\n", { NULL },
	  "vm.ini:2: kernel.initrd: /nonexistent/initrd.img: No such file or directory" },
	/* Debian's libinih 55 reads lines into a 200-byte buffer. */
	{ "[kernel]\ncmdline = " "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\n", { NULL },
	  "vm.ini:2: line is longer than 199 characters (continue a long cmdline, file, argv or env value on indented lines)" },
	/* [initramfs] */
	{ "[initramfs]\nfile = bin/app usr/bin/app\n", { NULL },
	  "vm.ini:2: initramfs.file: guest path 'usr/bin/app' is not absolute (write it as /usr/bin/app)" },
	{ "[initramfs]\nfile = bin/app /usr//bin/./app\n", { NULL },
	  "vm.ini:2: initramfs.file: guest path '/usr//bin/./app' is not normalized (write it as /usr/bin/app)" },
	{ "[initramfs]\nfile = bin/app /usr/../app\n", { NULL },
	  "vm.ini:2: initramfs.file: guest path '/usr/../app' contains '..' (write the path without it)" },
	{ "[initramfs]\nfile = bin/app /\n", { NULL },
	  "vm.ini:2: initramfs.file: guest path '/' is the root directory (expected a file path such as /bin/app)" },
	{ "[initramfs]\nfile = bin/app /app extra\n", { NULL },
	  "vm.ini:2: initramfs.file: expected HOST_PATH [GUEST_PATH], got 3 words (quote a path that contains spaces)" },
	{ "[initramfs]\nfile =\n", { NULL },
	  "vm.ini:2: initramfs.file: expected HOST_PATH [GUEST_PATH], got 0 words (quote a path that contains spaces)" },
	{ "[initramfs]\nfile = bin/app /app\nfile = bin/tool /app\n", { NULL },
	  "vm.ini:3: initramfs.file: guest path /app is already used on line 2 (give each file its own guest path)" },
	{ "[initramfs]\nfile = bin/missing /app\n", { NULL },
	  "vm.ini:2: initramfs.file: @DIR@/bin/missing: No such file or directory" },
	/* [run] */
	{ "[run]\nargv = sh -c 'echo hi\n", { NULL },
	  "vm.ini:2: run.argv: unterminated single quote at column 7 of the value (close the quote)" },
	{ "[run]\nargv = sh -c \"echo a ; echo b\"\n", { NULL },
	  "vm.ini:2: run.argv: unterminated double quote at column 7 of the value (close the quote; note that ' ;' starts a comment, so write ';' without a space before it)" },
	{ "[run]\nargv = echo \\\n", { NULL },
	  "vm.ini:2: run.argv: backslash at the end of the value at column 6 of the value (write \\\\ for a literal backslash)" },
	{ "[run]\nenv = GOOD=1 1BAD=2\n", { NULL },
	  "vm.ini:2: run.env: invalid variable name '1BAD' (use letters, digits and '_', not starting with a digit)" },
	{ "[run]\nenv = MY-VAR=2\n", { NULL },
	  "vm.ini:2: run.env: invalid variable name 'MY-VAR' (use letters, digits and '_', not starting with a digit)" },
	{ "[run]\nenv = FOO\n", { NULL },
	  "vm.ini:2: run.env: 'FOO' is not NAME=VALUE (write FOO= for an empty value)" },
	{ "[run]\ncwd = tmp\n", { NULL },
	  "vm.ini:2: run.cwd: guest path 'tmp' is not absolute (write it as /tmp)" },
	{ "[run]\ncwd = /srv/../etc\n", { NULL },
	  "vm.ini:2: run.cwd: guest path '/srv/../etc' contains '..' (write the path without it)" },
	{ "[run]\ntimeout = 10s\n", { NULL },
	  "vm.ini:2: run.timeout: invalid timeout '10s' (expected whole seconds such as 30, or 0 for none)" },
	/* [rootfs] */
	{ "[rootfs]\nimage = images/missing.tar\n", { NULL },
	  "vm.ini:2: rootfs.image: @DIR@/images/missing.tar: No such file or directory" },
	{ "[rootfs]\nimage = /dev/null\n", { NULL },
	  "vm.ini:2: rootfs.image: /dev/null: neither an image directory nor an image tarball" },
	{ "[rootfs]\nimage = x\ntag = latest\n", { NULL },
	  "vm.ini:3: rootfs.tag: unknown key (known keys: image)" },
	/* [device.NAME] */
	{ "[device.disk0]\npath = disk.img\n", { NULL },
	  "vm.ini:1: device.disk0.plugin: missing (each device section names its plugin, such as plugin = dev-blk)" },
	{ "[device.a]\nplugin = x\n[device.a]\n", { NULL },
	  "vm.ini:3: device.a: section already started on line 1 (give each device a unique name)" },
	{ "[device.my disk]\nplugin = x\n", { NULL },
	  "vm.ini:1: device.my disk: invalid device name 'my disk' (use letters, digits, '-' and '_', such as device.disk0)" },
	{ "[device.abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz]\nplugin = x\n", { NULL },
	  "vm.ini:1: section name is longer than 49 characters" },
	{ "[device.]\n", { NULL },
	  "vm.ini:1: device.: invalid device name '' (use letters, digits, '-' and '_', such as device.disk0)" },
	/* --set */
	{ "", { "machine.memory" },
	  "--set machine.memory: missing '=' (expected section.key=value, such as machine.memory=1G)" },
	{ "", { "memory=1G" },
	  "--set memory=1G: missing section (expected section.key=value, such as machine.memory=1G)" },
	{ "", { ".memory=1G" },
	  "--set .memory=1G: missing section (expected section.key=value, such as machine.memory=1G)" },
	{ "", { "machine.memroy=1G" },
	  "--set machine.memroy=1G: machine.memroy: unknown key (" MACHINE_KEYS ")" },
	{ "", { "vm.memory=1G" },
	  "--set vm.memory=1G: vm: unknown section (" SECTIONS ")" },
	{ "", { "machine.=1G" },
	  "--set machine.=1G: machine: missing key name before '='" },
	{ "[machine]\nvcpus = 2\n", { "machine.vcpus=4", "machine.vcpus=33" },
	  "--set machine.vcpus=33: machine.vcpus: 33 vCPUs is out of range (expected 1 to 32)" },
	{ "", { "run.argv=sh -c 'x" },
	  "--set run.argv=sh -c 'x: run.argv: unterminated single quote at column 7 of the value (close the quote)" },
	{ "", { "device.net0.mac=02:00:00:00:00:01" },
	  "--set device.net0.mac=02:00:00:00:00:01: device.net0.plugin: missing (each device section names its plugin, such as plugin = dev-blk)" },
};

static void load_bad_configs(void **state)
{
	for (size_t i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
		const struct bad_config *c = &bad_configs[i];
		struct machine_config config;
		struct sm_error err = { 0 };
		size_t override_count = 0;
		int ret;

		while (override_count < MAX_OVERRIDES && c->overrides[override_count])
			override_count++;
		write_file("vm.ini", c->ini);
		print_message("case %zu: %s\n", i, c->message);
		ret = config__load(&config, "vm.ini", (char *const *)c->overrides, override_count, &err);
		assert_true(ret < 0);
		assert_int_equal(err.code, -ret);
		assert_string_equal(err.message, expand(c->message));
		assert_null(config.path);
		assert_null(config.accelerator);
	}
}

static void load_missing_file(void **state)
{
	struct machine_config config;
	struct sm_error err = { 0 };

	assert_int_equal(config__load(&config, "missing.ini", NULL, 0, &err), -ENOENT);
	assert_string_equal(err.message, "missing.ini: cannot open: No such file or directory");
	assert_int_equal(config__load(&config, "nodir/vm.ini", NULL, 0, &err), -ENOENT);
	assert_string_equal(err.message, "nodir/vm.ini: cannot open: No such file or directory");
	assert_int_equal(config__load(&config, "somedir", NULL, 0, &err), -EISDIR);
	assert_string_equal(err.message, "somedir: cannot open: Is a directory");
}

static void load_defaults(void **state)
{
	struct machine_config config;
	struct sm_error err = { 0 };

	write_file("vm.ini", "; nothing but a comment\n");
	if (config__load(&config, "vm.ini", NULL, 0, &err))
		fail_msg("%s", err.message);
	assert_string_equal(config.path, "vm.ini");
	assert_string_equal(config.dir, test_dir);
	assert_string_equal(config.accelerator, "hv-kvm");
	assert_int_equal(config.memory_bytes, 256ull << 20);
	assert_int_equal(config.vcpus, 1);
	assert_int_equal(config.cpu_template, SMCORE_CPU_TEMPLATE_HOST);
	assert_null(config.console);
	assert_null(config.plugin_dir);
	assert_null(config.kernel);
	assert_null(config.initrd);
	assert_string_equal(config.cmdline, "quiet");
	assert_int_equal(config.file_count, 0);
	assert_int_equal(config.argc, 0);
	assert_non_null(config.argv);
	assert_null(config.argv[0]);
	assert_int_equal(config.env_count, 0);
	assert_non_null(config.env);
	assert_null(config.env[0]);
	assert_null(config.cwd);
	assert_int_equal(config.timeout_seconds, 0);
	assert_int_equal(config.device_count, 0);
	for (int key = 0; key < CONFIG_KEY_COUNT; key++)
		assert_int_equal(config.key_lines[key], 0);
	config__free(&config);
	assert_null(config.path);
	config__free(&config);
}

static const char every_key_ini[] =
	"\xEF\xBB\xBF; every key of the core\n"
	"[machine]\n"
	"accelerator = hv-test\n"
	"memory = 512MiB\n"
	"vcpus = 32\n"
	"cpu_template = baseline\n"
	"console = somedir/console.log\n"
	"plugin_dir = plugins/\n"
	"\n"
	"[kernel]\n"
	"kernel = ./vmlinux ; inline comment\n"
	"initrd = bin/../initrd.img\n"
	"cmdline = console=ttyS0\n"
	"  loglevel=3\n"
	"\n"
	"[initramfs]\n"
	"file = bin/app /usr/bin/app\n"
	"file = bin/tool\n"
	"\n"
	"[run]\n"
	"argv = sh -c 'echo \"$GREETING\"' ''\n"
	"\tlast\n"
	"env = GREETING='hello world' EMPTY=\n"
	"env = GREETING=replaced PATH=/bin\n"
	"cwd = /srv\n"
	"timeout = 30\n";

static void load_every_key(void **state)
{
	struct machine_config config;
	struct sm_error err = { 0 };
	char path[PATH_MAX + 64];

	write_file("vm.ini", every_key_ini);
	if (config__load(&config, "vm.ini", NULL, 0, &err))
		fail_msg("%s", err.message);
	assert_string_equal(config.accelerator, "hv-test");
	assert_int_equal(config.memory_bytes, 512ull << 20);
	assert_int_equal(config.vcpus, 32);
	assert_int_equal(config.cpu_template, SMCORE_CPU_TEMPLATE_BASELINE);
	snprintf(path, sizeof(path), "%s/somedir/console.log", test_dir);
	assert_string_equal(config.console, path);
	snprintf(path, sizeof(path), "%s/plugins", test_dir);
	assert_string_equal(config.plugin_dir, path);
	snprintf(path, sizeof(path), "%s/vmlinux", test_dir);
	assert_string_equal(config.kernel, path);
	snprintf(path, sizeof(path), "%s/initrd.img", test_dir);
	assert_string_equal(config.initrd, path);
	assert_string_equal(config.cmdline, "console=ttyS0 loglevel=3");

	assert_int_equal(config.file_count, 2);
	snprintf(path, sizeof(path), "%s/bin/app", test_dir);
	assert_string_equal(config.files[0].host_path, path);
	assert_string_equal(config.files[0].guest_path, "/usr/bin/app");
	assert_int_equal(config.files[0].line, 17);
	snprintf(path, sizeof(path), "%s/bin/tool", test_dir);
	assert_string_equal(config.files[1].host_path, path);
	assert_string_equal(config.files[1].guest_path, path);
	assert_int_equal(config.files[1].line, 18);

	assert_int_equal(config.argc, 5);
	assert_string_equal(config.argv[0], "sh");
	assert_string_equal(config.argv[1], "-c");
	assert_string_equal(config.argv[2], "echo \"$GREETING\"");
	assert_string_equal(config.argv[3], "");
	assert_string_equal(config.argv[4], "last");
	assert_null(config.argv[5]);
	assert_int_equal(config.env_count, 3);
	assert_string_equal(config.env[0], "GREETING=replaced");
	assert_string_equal(config.env[1], "EMPTY=");
	assert_string_equal(config.env[2], "PATH=/bin");
	assert_null(config.env[3]);
	assert_string_equal(config.cwd, "/srv");
	assert_int_equal(config.timeout_seconds, 30);

	assert_int_equal(config.key_lines[CONFIG_MACHINE_ACCELERATOR], 3);
	assert_int_equal(config.key_lines[CONFIG_MACHINE_PLUGIN_DIR], 8);
	assert_int_equal(config.key_lines[CONFIG_KERNEL_CMDLINE], 13);
	assert_int_equal(config.key_lines[CONFIG_RUN_ARGV], 21);
	assert_int_equal(config.key_lines[CONFIG_RUN_TIMEOUT], 26);
	assert_string_equal(config__key_name(CONFIG_RUN_TIMEOUT), "run.timeout");
	config__free(&config);
}

static void load_memory_rounding(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{ "16777215", 16ull << 20 },
		{ "16M", 16ull << 20 },
		{ "20000001", 20000768 },
		{ "1g", 1ull << 30 },
		{ "2TiB", 2ull << 40 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct machine_config config;
		struct sm_error err = { 0 };
		char ini[128];

		snprintf(ini, sizeof(ini), "[machine]\nmemory = %s\n", cases[i].text);
		write_file("vm.ini", ini);
		if (config__load(&config, "vm.ini", NULL, 0, &err))
		fail_msg("%s", err.message);
		assert_int_equal(config.memory_bytes, cases[i].bytes);
		config__free(&config);
	}
}

static void load_with_overrides(void **state)
{
	char *overrides[] = {
		"machine.memory=1G",
		"kernel.initrd=",
		"kernel.cmdline=",
		"initramfs.file=bin/tool /tool",
		"run.env=PATH=/usr/bin EXTRA=1",
		"run.argv=true",
		"device.disk0.path=other.img",
		"device.net0.plugin=virtio-net",
	};
	struct machine_config config;
	struct sm_error err = { 0 };

	/* The file's invalid memory value is replaced before it is checked. */
	write_file("vm.ini",
		   "[machine]\nmemory = 12X\n"
		   "[kernel]\ninitrd = initrd.img\n"
		   "[initramfs]\nfile = bin/app /app\n"
		   "[run]\nenv = PATH=/bin\nargv = false\n"
		   "[device.disk0]\nplugin = virtio-blk\npath = disk.img\nread_only = true\n");
	assert_int_equal(config__load(&config, "vm.ini", overrides,
				      sizeof(overrides) / sizeof(overrides[0]), &err), 0);
	assert_int_equal(config.memory_bytes, 1ull << 30);
	assert_int_equal(config.key_lines[CONFIG_MACHINE_MEMORY], 0);
	assert_null(config.initrd);
	assert_string_equal(config.cmdline, "");
	assert_int_equal(config.file_count, 2);
	assert_string_equal(config.files[1].guest_path, "/tool");
	assert_int_equal(config.files[1].line, 0);
	assert_int_equal(config.env_count, 2);
	assert_string_equal(config.env[0], "PATH=/usr/bin");
	assert_string_equal(config.env[1], "EXTRA=1");
	assert_int_equal(config.argc, 1);
	assert_string_equal(config.argv[0], "true");

	assert_int_equal(config.device_count, 2);
	assert_string_equal(config.devices[0].name, "disk0");
	assert_int_equal(config.devices[0].count, 3);
	assert_string_equal(config.devices[0].values[1].key, "read_only");
	assert_string_equal(config.devices[0].values[2].key, "path");
	assert_string_equal(config.devices[0].values[2].value, "other.img");
	assert_int_equal(config.devices[0].values[2].line, 0);
	assert_string_equal(config.devices[1].name, "net0");
	assert_int_equal(config.devices[1].line, 0);
	assert_string_equal(config.devices[1].values[0].value, "virtio-net");
	config__free(&config);
}

static void load_device_sections(void **state)
{
	struct machine_config config;
	struct sm_error err = { 0 };
	const struct config_section *disk, *vsock;

	write_file("vm.ini",
		   "[machine]\nvcpus = 2\n"
		   "\n"
		   "[device.disk0]\n"
		   "plugin = virtio-blk\n"
		   "path = images/root.img ; relative paths are the plugin's business\n"
		   "\n"
		   "[device.vsock]\n"
		   "plugin = virtio-vsock\n"
		   "port = 1024\n"
		   "port = 1025\n"
		   "socket = /run/a\n"
		   "  /run/b\n");
	if (config__load(&config, "vm.ini", NULL, 0, &err))
		fail_msg("%s", err.message);
	assert_int_equal(config.device_count, 2);

	disk = &config.devices[0];
	assert_string_equal(disk->name, "disk0");
	assert_int_equal(disk->line, 4);
	assert_int_equal(disk->count, 2);
	assert_string_equal(disk->values[0].key, "plugin");
	assert_string_equal(disk->values[0].value, "virtio-blk");
	assert_int_equal(disk->values[0].line, 5);
	assert_string_equal(disk->values[1].key, "path");
	assert_string_equal(disk->values[1].value, "images/root.img");
	assert_int_equal(disk->values[1].line, 6);

	vsock = &config.devices[1];
	assert_string_equal(vsock->name, "vsock");
	assert_int_equal(vsock->line, 8);
	assert_int_equal(vsock->count, 4);
	assert_string_equal(vsock->values[1].value, "1024");
	assert_int_equal(vsock->values[1].line, 10);
	assert_string_equal(vsock->values[2].value, "1025");
	assert_int_equal(vsock->values[2].line, 11);
	assert_string_equal(vsock->values[3].value, "/run/a /run/b");
	assert_int_equal(vsock->values[3].line, 12);
	config__free(&config);
}

static void set_argv_replaces_run_argv(void **state)
{
	char *command[] = { "python3", "-c", "print('hi')", "" };
	struct machine_config config;
	struct sm_error err = { 0 };

	write_file("vm.ini", "[run]\nargv = sh -c 'exit 3'\n");
	if (config__load(&config, "vm.ini", NULL, 0, &err))
		fail_msg("%s", err.message);
	assert_int_equal(config.key_lines[CONFIG_RUN_ARGV], 2);

	assert_int_equal(config__set_argv(&config, command, 4, &err), 0);
	assert_int_equal(config.argc, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(config.argv[i], command[i]);
		assert_ptr_not_equal(config.argv[i], command[i]);
	}
	assert_null(config.argv[4]);
	assert_int_equal(config.key_lines[CONFIG_RUN_ARGV], 0);

	assert_int_equal(config__set_argv(&config, command, 0, &err), -EINVAL);
	assert_string_equal(err.message, "missing command after --");
	assert_int_equal(config.argc, 4);
	config__free(&config);
}

static void parse_size_units(void **state)
{
	static const struct {
		const char *text;
		int ret;
		uint64_t bytes;
	} cases[] = {
		{ "1048576", 0, 1048576 },
		{ "0", 0, 0 },
		{ "4K", 0, 4096 },
		{ "4KiB", 0, 4096 },
		{ "256M", 0, 256ull << 20 },
		{ "256m", 0, 256ull << 20 },
		{ "512MiB", 0, 512ull << 20 },
		{ "1G", 0, 1ull << 30 },
		{ "3GiB", 0, 3ull << 30 },
		{ "1T", 0, 1ull << 40 },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "16777216T", -EINVAL, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "12X", -EINVAL, 0 },
		{ "256MB", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ " 1G", -EINVAL, 0 },
		{ "1G ", -EINVAL, 0 },
		{ "-1G", -EINVAL, 0 },
		{ "+1G", -EINVAL, 0 },
		{ "1 G", -EINVAL, 0 },
		{ "0x100", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 12345;

		print_message("size: [%s]\n", cases[i].text);
		assert_int_equal(config__parse_size(cases[i].text, &bytes), cases[i].ret);
		if (cases[i].ret == 0)
			assert_int_equal(bytes, cases[i].bytes);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load_bad_configs),
		cmocka_unit_test(load_missing_file),
		cmocka_unit_test(load_defaults),
		cmocka_unit_test(load_every_key),
		cmocka_unit_test(load_memory_rounding),
		cmocka_unit_test(load_with_overrides),
		cmocka_unit_test(load_device_sections),
		cmocka_unit_test(set_argv_replaces_run_argv),
		cmocka_unit_test(parse_size_units),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
