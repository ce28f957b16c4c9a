/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine config is read in two passes. The first pass runs inih over the
 * file and then the --set overrides, and collects the raw value of every key
 * with where it came from, so that an override replaces a file value before
 * anything checks it. The second pass converts and validates the surviving
 * values and fills struct machine_config.
 */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "shell_words.h"

/* libinih 55 (Debian 12) copies section names into a 50-byte buffer and cuts longer ones. */
#define MAX_SECTION_NAME 49

/* Source of a value: a line of the file or one --set argument. */
struct origin {
	int line;             /* 0 for --set */
	const char *override; /* the --set argument, NULL for the file */
};

/* The raw value of one core key, before conversion. */
struct entry {
	enum config_key key;
	char *value;
	struct origin origin;
	bool inline_comment;  /* inih cut a " ;" comment off the line */
	bool replaced;        /* a later --set overrides it */
};

struct loader;

struct key_spec {
	const char *section;
	const char *name;
	bool repeatable;
	bool continues;       /* indented lines may continue the value */
	int (*apply)(struct loader *loader, const struct entry *entry);
};

enum continuation_target { TARGET_NONE, TARGET_ENTRY, TARGET_DEVICE };

struct loader {
	struct machine_config *config;
	struct sm_error *err;
	int error;            /* first error as -errno, 0 while none */

	/* Reading the file. */
	FILE *file;
	char *raw_line;       /* the current line as read, without its newline */
	size_t raw_capacity;
	int line;
	bool have_key;        /* inih saw a key since the last section header */
	bool continuation;    /* the current line continues the previous value */
	enum continuation_target target;
	size_t target_index;  /* entry, or device section */
	size_t target_value;  /* value within the device section */

	struct entry *entries;
	size_t entry_count;
	size_t entry_capacity;
};

static int apply_accelerator(struct loader *loader, const struct entry *entry);
static int apply_memory(struct loader *loader, const struct entry *entry);
static int apply_vcpus(struct loader *loader, const struct entry *entry);
static int apply_cpu_template(struct loader *loader, const struct entry *entry);
static int apply_console(struct loader *loader, const struct entry *entry);
static int apply_plugin_dir(struct loader *loader, const struct entry *entry);
static int apply_input_file(struct loader *loader, const struct entry *entry);
static int apply_cmdline(struct loader *loader, const struct entry *entry);
static int apply_initramfs_file(struct loader *loader, const struct entry *entry);
static int apply_argv(struct loader *loader, const struct entry *entry);
static int apply_env(struct loader *loader, const struct entry *entry);
static int apply_cwd(struct loader *loader, const struct entry *entry);
static int apply_timeout(struct loader *loader, const struct entry *entry);
static int apply_rootfs_image(struct loader *loader, const struct entry *entry);

static const struct key_spec key_specs[CONFIG_KEY_COUNT] = {
	[CONFIG_MACHINE_ACCELERATOR] = { "machine", "accelerator", false, false, apply_accelerator },
	[CONFIG_MACHINE_MEMORY] = { "machine", "memory", false, false, apply_memory },
	[CONFIG_MACHINE_VCPUS] = { "machine", "vcpus", false, false, apply_vcpus },
	[CONFIG_MACHINE_CPU_TEMPLATE] = { "machine", "cpu_template", false, false, apply_cpu_template },
	[CONFIG_MACHINE_CONSOLE] = { "machine", "console", false, false, apply_console },
	[CONFIG_MACHINE_PLUGIN_DIR] = { "machine", "plugin_dir", false, false, apply_plugin_dir },
	[CONFIG_KERNEL_KERNEL] = { "kernel", "kernel", false, false, apply_input_file },
	[CONFIG_KERNEL_INITRD] = { "kernel", "initrd", false, false, apply_input_file },
	[CONFIG_KERNEL_CMDLINE] = { "kernel", "cmdline", false, true, apply_cmdline },
	[CONFIG_INITRAMFS_FILE] = { "initramfs", "file", true, true, apply_initramfs_file },
	[CONFIG_RUN_ARGV] = { "run", "argv", false, true, apply_argv },
	[CONFIG_RUN_ENV] = { "run", "env", true, true, apply_env },
	[CONFIG_RUN_CWD] = { "run", "cwd", false, false, apply_cwd },
	[CONFIG_RUN_TIMEOUT] = { "run", "timeout", false, false, apply_timeout },
	[CONFIG_ROOTFS_IMAGE] = { "rootfs", "image", false, false, apply_rootfs_image },
};

static const char *const core_sections[] = { "machine", "kernel", "initramfs", "run", "rootfs" };
static const char known_sections[] = "machine, kernel, initramfs, run, rootfs, device.NAME";
static const char device_prefix[] = "device.";

static const char *const key_names[CONFIG_KEY_COUNT] = {
	[CONFIG_MACHINE_ACCELERATOR] = "machine.accelerator",
	[CONFIG_MACHINE_MEMORY] = "machine.memory",
	[CONFIG_MACHINE_VCPUS] = "machine.vcpus",
	[CONFIG_MACHINE_CPU_TEMPLATE] = "machine.cpu_template",
	[CONFIG_MACHINE_CONSOLE] = "machine.console",
	[CONFIG_MACHINE_PLUGIN_DIR] = "machine.plugin_dir",
	[CONFIG_KERNEL_KERNEL] = "kernel.kernel",
	[CONFIG_KERNEL_INITRD] = "kernel.initrd",
	[CONFIG_KERNEL_CMDLINE] = "kernel.cmdline",
	[CONFIG_INITRAMFS_FILE] = "initramfs.file",
	[CONFIG_RUN_ARGV] = "run.argv",
	[CONFIG_RUN_ENV] = "run.env",
	[CONFIG_RUN_CWD] = "run.cwd",
	[CONFIG_RUN_TIMEOUT] = "run.timeout",
	[CONFIG_ROOTFS_IMAGE] = "rootfs.image",
};

const char *config__key_name(enum config_key key)
{
	if ((unsigned)key >= CONFIG_KEY_COUNT)
		return "unknown";
	return key_names[key];
}

/* ---- Error messages ---- */

/*
 * Record "ORIGIN: NAME: PROBLEM" unless an error is already recorded; returns
 * -code. ORIGIN is "FILE:LINE", "FILE" when line is 0 and override NULL, or
 * "--set ARG". NAME may be NULL.
 */
__attribute__((format(printf, 5, 6)))
static int report(struct loader *loader, const struct origin *origin, const char *name,
		  int code, const char *fmt, ...)
{
	char problem[768];
	char where[512];
	va_list args;

	if (loader->error)
		return loader->error;

	va_start(args, fmt);
	vsnprintf(problem, sizeof(problem), fmt, args);
	va_end(args);

	if (origin->override)
		snprintf(where, sizeof(where), "--set %s", origin->override);
	else if (origin->line)
		snprintf(where, sizeof(where), "%s:%d", loader->config->path, origin->line);
	else
		snprintf(where, sizeof(where), "%s", loader->config->path);

	if (name)
		sm_error__set(loader->err, code, "%s: %s: %s", where, name, problem);
	else
		sm_error__set(loader->err, code, "%s: %s", where, problem);
	loader->error = -code;
	return -code;
}

/* Report a problem with the current line of the file, which has no key name yet. */
__attribute__((format(printf, 2, 3)))
static int report_line(struct loader *loader, const char *fmt, ...)
{
	struct origin origin = { .line = loader->line };
	char problem[768];
	va_list args;

	va_start(args, fmt);
	vsnprintf(problem, sizeof(problem), fmt, args);
	va_end(args);
	return report(loader, &origin, NULL, EINVAL, "%s", problem);
}

static int report_entry(struct loader *loader, const struct entry *entry, int code,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int report_entry(struct loader *loader, const struct entry *entry, int code,
			const char *fmt, ...)
{
	char problem[768];
	va_list args;

	va_start(args, fmt);
	vsnprintf(problem, sizeof(problem), fmt, args);
	va_end(args);
	return report(loader, &entry->origin, key_names[entry->key], code, "%s", problem);
}

/* ---- Small parsers ---- */

static const struct size_suffix {
	const char *text;
	unsigned shift;
} size_suffixes[] = {
	{ "", 0 },
	{ "K", 10 }, { "KiB", 10 },
	{ "M", 20 }, { "MiB", 20 },
	{ "G", 30 }, { "GiB", 30 },
	{ "T", 40 }, { "TiB", 40 },
};

int config__parse_size(const char *text, uint64_t *bytes)
{
	unsigned long long number;
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	number = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;

	/* Units are binary (K = 1024) and case-insensitive. */
	for (size_t i = 0; i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++) {
		unsigned shift = size_suffixes[i].shift;

		if (strcasecmp(end, size_suffixes[i].text))
			continue;
		if (number > (UINT64_MAX >> shift))
			return -EINVAL;
		*bytes = (uint64_t)number << shift;
		return 0;
	}
	return -EINVAL;
}

/* Parse a decimal number from 0 to `max` with nothing around it; returns 0 or -EINVAL. */
static int parse_unsigned(const char *text, unsigned long max, unsigned long *number)
{
	char *end;

	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	*number = strtoul(text, &end, 10);
	if (errno || *end || *number > max)
		return -EINVAL;
	return 0;
}

static bool is_env_name(const char *name, size_t length)
{
	if (length == 0 || isdigit((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < length; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			return false;
	}
	return true;
}

static bool is_device_name(const char *name)
{
	if (!*name)
		return false;
	for (const char *c = name; *c; c++) {
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
			return false;
	}
	return true;
}

/*
 * The same scan as inih's: stop at one of `chars` or at an inline comment,
 * which is a ';' after whitespace.
 */
static const char *find_chars_or_comment(const char *text, const char *chars)
{
	bool was_space = false;

	while (*text && (!chars || !strchr(chars, *text)) && !(was_space && *text == ';')) {
		was_space = isspace((unsigned char)*text);
		text++;
	}
	return text;
}

/* ---- Paths ---- */

/*
 * Return `path` made absolute against `dir` with ".", ".." and repeated
 * slashes removed lexically, in a new string; NULL when out of memory.
 */
static char *resolve_path(const char *dir, const char *path)
{
	char *joined;
	size_t out = 0;
	size_t in = 0;

	if (path[0] == '/')
		joined = strdup(path);
	else if (asprintf(&joined, "%s/%s", dir, path) < 0)
		joined = NULL;
	if (!joined)
		return NULL;

	/* Rewrite in place: `out` never passes `in`. */
	while (joined[in]) {
		size_t start, length;

		while (joined[in] == '/')
			in++;
		start = in;
		while (joined[in] && joined[in] != '/')
			in++;
		length = in - start;
		if (length == 0 || (length == 1 && joined[start] == '.'))
			continue;
		if (length == 2 && joined[start] == '.' && joined[start + 1] == '.') {
			while (out > 0 && joined[out - 1] != '/')
				out--;
			if (out > 0)
				out--;
			continue;
		}
		joined[out++] = '/';
		memmove(joined + out, joined + start, length);
		out += length;
	}
	if (out == 0)
		joined[out++] = '/';
	joined[out] = '\0';
	return joined;
}

/* Return NULL when `path` is an absolute, normalized guest path, else what is wrong. */
static const char *guest_path_problem(const char *path, bool allow_root)
{
	if (path[0] != '/')
		return "is not absolute";
	if (!allow_root && path[1] == '\0')
		return "is the root directory (expected a file path such as /bin/app)";

	for (const char *c = path + 1; ; ) {
		const char *end = strchrnul(c, '/');
		size_t length = (size_t)(end - c);

		if (length == 2 && c[0] == '.' && c[1] == '.')
			return "contains '..' (write the path without it)";
		if ((length == 0 && *end) || (length == 1 && c[0] == '.'))
			return "is not normalized";
		if (length == 0 && c != path + 1)
			return "ends with '/'";
		if (!*end)
			return NULL;
		c = end + 1;
	}
}

/* Check a guest path and report what is wrong with a fix; returns 0 or -EINVAL. */
static int check_guest_path(struct loader *loader, const struct entry *entry, const char *path,
			    bool allow_root)
{
	const char *problem = guest_path_problem(path, allow_root);
	char *fixed;
	int ret;

	if (!problem)
		return 0;
	if (strcmp(problem, "is not normalized") && strcmp(problem, "ends with '/'") &&
	    strcmp(problem, "is not absolute"))
		return report_entry(loader, entry, EINVAL, "guest path '%s' %s", path, problem);

	/* For fixable forms, suggest the normalized path. */
	fixed = resolve_path("/", path);
	if (!fixed)
		return report_entry(loader, entry, ENOMEM, "out of memory");
	ret = report_entry(loader, entry, EINVAL, "guest path '%s' %s (write it as %s)",
			   path, problem, fixed);
	free(fixed);
	return ret;
}

/* Check that `path` is a regular file that can be opened for reading; returns 0 or -errno. */
static int check_input_file(struct loader *loader, const struct entry *entry, const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return report_entry(loader, entry, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int code = errno;

		close(fd);
		return report_entry(loader, entry, code, "%s: %s", path, strerror(code));
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return report_entry(loader, entry, EINVAL, "%s: not a regular file", path);
	return 0;
}

/* Resolve an optional path value into *slot (NULL for an empty value); returns 0 or -ENOMEM. */
static int resolve_optional_path(struct loader *loader, const struct entry *entry, char **slot)
{
	free(*slot);
	*slot = NULL;
	if (!entry->value[0])
		return 0;
	*slot = resolve_path(loader->config->dir, entry->value);
	if (!*slot)
		return report_entry(loader, entry, ENOMEM, "out of memory");
	return 0;
}

/* Split a value into words, reporting bad quoting with its column; returns 0 or -errno. */
static int split_words(struct loader *loader, const struct entry *entry, char ***words,
		       size_t *count)
{
	struct shell_words_error error = { 0 };
	const char *hint = "";
	int ret;

	ret = shell_words__split(entry->value, words, count, &error);
	if (ret == -ENOMEM)
		return report_entry(loader, entry, ENOMEM, "out of memory");
	if (ret == 0)
		return 0;

	if (entry->inline_comment)
		hint = "; note that ' ;' starts a comment, so write ';' without a space before it";
	return report_entry(loader, entry, EINVAL, "%s at column %zu of the value (%s%s)",
			    error.problem, error.column,
			    error.problem[0] == 'b' ? "write \\\\ for a literal backslash"
						    : "close the quote",
			    hint);
}

/* ---- Converting values (second pass) ---- */

static int replace_string(struct loader *loader, const struct entry *entry, char **slot)
{
	char *copy = strdup(entry->value);

	if (!copy)
		return report_entry(loader, entry, ENOMEM, "out of memory");
	free(*slot);
	*slot = copy;
	return 0;
}

static int apply_accelerator(struct loader *loader, const struct entry *entry)
{
	const char *name = entry->value;

	if (!name[0])
		return report_entry(loader, entry, EINVAL,
				    "missing plugin name (such as " CONFIG_DEFAULT_ACCELERATOR ")");
	if (strpbrk(name, "/ \t"))
		return report_entry(loader, entry, EINVAL,
				    "invalid plugin name '%s' (expected a name without '/' or spaces, such as "
				    CONFIG_DEFAULT_ACCELERATOR ")", name);
	return replace_string(loader, entry, &loader->config->accelerator);
}

static int apply_memory(struct loader *loader, const struct entry *entry)
{
	uint64_t bytes;

	if (config__parse_size(entry->value, &bytes) < 0)
		return report_entry(loader, entry, EINVAL,
				    "invalid size '%s' (expected a number with an optional K, M, G or T suffix, such as 256M)",
				    entry->value);
	if (bytes > UINT64_MAX - (CONFIG_MEMORY_ALIGNMENT - 1))
		return report_entry(loader, entry, EINVAL, "size '%s' is too large", entry->value);
	bytes = (bytes + CONFIG_MEMORY_ALIGNMENT - 1) & ~(CONFIG_MEMORY_ALIGNMENT - 1);
	if (bytes < CONFIG_MIN_MEMORY_BYTES)
		return report_entry(loader, entry, EINVAL,
				    "size '%s' is too small (the minimum is 16M)", entry->value);
	loader->config->memory_bytes = bytes;
	return 0;
}

static int apply_vcpus(struct loader *loader, const struct entry *entry)
{
	unsigned long vcpus;

	if (parse_unsigned(entry->value, ULONG_MAX, &vcpus) < 0)
		return report_entry(loader, entry, EINVAL,
				    "invalid number '%s' (expected a whole number from 1 to %u)",
				    entry->value, CONFIG_MAX_VCPUS);
	if (vcpus < 1 || vcpus > CONFIG_MAX_VCPUS)
		return report_entry(loader, entry, EINVAL,
				    "%s vCPUs is out of range (expected 1 to %u)",
				    entry->value, CONFIG_MAX_VCPUS);
	loader->config->vcpus = (unsigned)vcpus;
	return 0;
}

static int apply_cpu_template(struct loader *loader, const struct entry *entry)
{
	if (!strcmp(entry->value, "host"))
		loader->config->cpu_template = SMCORE_CPU_TEMPLATE_HOST;
	else if (!strcmp(entry->value, "baseline"))
		loader->config->cpu_template = SMCORE_CPU_TEMPLATE_BASELINE;
	else
		return report_entry(loader, entry, EINVAL,
				    "unknown CPU template '%s' (expected host or baseline)",
				    entry->value);
	return 0;
}

static int apply_console(struct loader *loader, const struct entry *entry)
{
	char **console = &loader->config->console;
	struct stat st;
	char *parent;
	int ret;

	ret = resolve_optional_path(loader, entry, console);
	if (ret || !*console)
		return ret;

	if (stat(*console, &st) == 0 && S_ISDIR(st.st_mode))
		return report_entry(loader, entry, EISDIR,
				    "%s: is a directory (give a file name for the console output)",
				    *console);

	/* The resolved path is absolute and normalized, so its parent is the part before the last '/'. */
	parent = strndup(*console, (size_t)(strrchr(*console, '/') - *console));
	if (!parent)
		return report_entry(loader, entry, ENOMEM, "out of memory");
	if (parent[0] && stat(parent, &st) < 0)
		ret = report_entry(loader, entry, errno, "%s: parent directory %s: %s",
				   *console, parent, strerror(errno));
	else if (parent[0] && !S_ISDIR(st.st_mode))
		ret = report_entry(loader, entry, ENOTDIR, "%s: parent %s is not a directory",
				   *console, parent);
	free(parent);
	return ret;
}

static int apply_plugin_dir(struct loader *loader, const struct entry *entry)
{
	char **plugin_dir = &loader->config->plugin_dir;
	struct stat st;
	int ret;

	ret = resolve_optional_path(loader, entry, plugin_dir);
	if (ret || !*plugin_dir)
		return ret;
	if (stat(*plugin_dir, &st) < 0)
		return report_entry(loader, entry, errno, "%s: %s", *plugin_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return report_entry(loader, entry, ENOTDIR, "%s: not a directory", *plugin_dir);
	return 0;
}

/* kernel.kernel and kernel.initrd */
static int apply_input_file(struct loader *loader, const struct entry *entry)
{
	char **slot = entry->key == CONFIG_KERNEL_KERNEL ? &loader->config->kernel
							 : &loader->config->initrd;
	int ret;

	ret = resolve_optional_path(loader, entry, slot);
	if (ret || !*slot)
		return ret;
	return check_input_file(loader, entry, *slot);
}

/* An OCI image layout directory or an image tarball; the import checks its contents. */
static int apply_rootfs_image(struct loader *loader, const struct entry *entry)
{
	char **slot = &loader->config->rootfs_image;
	struct stat st;
	int ret;

	ret = resolve_optional_path(loader, entry, slot);
	if (ret || !*slot)
		return ret;
	if (stat(*slot, &st) != 0)
		return report_entry(loader, entry, errno, "%s: %s", *slot, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return report_entry(loader, entry, EINVAL,
				    "%s: neither an image directory nor an image tarball", *slot);
	return 0;
}

static int apply_cmdline(struct loader *loader, const struct entry *entry)
{
	return replace_string(loader, entry, &loader->config->cmdline);
}

/* Return the entry that already uses `guest_path`, or NULL. */
static const struct config_file *find_guest_path(const struct machine_config *config,
						 const char *guest_path)
{
	for (size_t i = 0; i < config->file_count; i++) {
		if (!strcmp(config->files[i].guest_path, guest_path))
			return &config->files[i];
	}
	return NULL;
}

static int add_initramfs_file(struct loader *loader, const struct entry *entry,
			      char *host_path, const char *guest_word)
{
	struct machine_config *config = loader->config;
	const struct config_file *previous;
	struct config_file *files;
	char *guest_path;
	int ret;

	ret = check_guest_path(loader, entry, guest_word, false);
	if (ret)
		return ret;
	previous = find_guest_path(config, guest_word);
	if (previous && previous->line)
		return report_entry(loader, entry, EEXIST,
				    "guest path %s is already used on line %d (give each file its own guest path)",
				    guest_word, previous->line);
	if (previous)
		return report_entry(loader, entry, EEXIST,
				    "guest path %s is already used by another --set (give each file its own guest path)",
				    guest_word);

	guest_path = strdup(guest_word);
	files = realloc(config->files, (config->file_count + 1) * sizeof(*files));
	if (!guest_path || !files) {
		free(guest_path);
		if (files)
			config->files = files;
		return report_entry(loader, entry, ENOMEM, "out of memory");
	}
	config->files = files;
	files[config->file_count++] = (struct config_file){
		.host_path = host_path,
		.guest_path = guest_path,
		.line = entry->origin.line,
	};
	return 0;
}

static int apply_initramfs_file(struct loader *loader, const struct entry *entry)
{
	char *host_path = NULL;
	char **words;
	size_t count;
	int ret;

	ret = split_words(loader, entry, &words, &count);
	if (ret)
		return ret;
	if (count < 1 || count > 2) {
		ret = report_entry(loader, entry, EINVAL,
				   "expected HOST_PATH [GUEST_PATH], got %zu words (quote a path that contains spaces)",
				   count);
		goto out;
	}

	host_path = resolve_path(loader->config->dir, words[0]);
	if (!host_path) {
		ret = report_entry(loader, entry, ENOMEM, "out of memory");
		goto out;
	}
	ret = check_input_file(loader, entry, host_path);
	if (ret)
		goto out;

	/* Without a guest path the file keeps its absolute host path in the guest. */
	ret = add_initramfs_file(loader, entry, host_path, count == 2 ? words[1] : host_path);
	if (ret == 0)
		host_path = NULL;
out:
	free(host_path);
	shell_words__free(words);
	return ret;
}

static int apply_argv(struct loader *loader, const struct entry *entry)
{
	struct machine_config *config = loader->config;
	char **words;
	size_t count;
	int ret;

	ret = split_words(loader, entry, &words, &count);
	if (ret)
		return ret;
	shell_words__free(config->argv);
	config->argv = words;
	config->argc = count;
	return 0;
}

/* Set NAME=VALUE in config->env, replacing an earlier value of NAME; returns 0 or -ENOMEM. */
static int set_env(struct machine_config *config, const char *assignment, size_t name_length)
{
	char *copy = strdup(assignment);
	char **env;

	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < config->env_count; i++) {
		if (!strncmp(config->env[i], assignment, name_length + 1)) {
			free(config->env[i]);
			config->env[i] = copy;
			return 0;
		}
	}

	env = realloc(config->env, (config->env_count + 2) * sizeof(*env));
	if (!env) {
		free(copy);
		return -ENOMEM;
	}
	config->env = env;
	env[config->env_count++] = copy;
	env[config->env_count] = NULL;
	return 0;
}

static int apply_env(struct loader *loader, const struct entry *entry)
{
	char **words;
	size_t count;
	int ret;

	ret = split_words(loader, entry, &words, &count);
	if (ret)
		return ret;

	for (size_t i = 0; i < count && !ret; i++) {
		const char *equals = strchr(words[i], '=');

		if (!equals) {
			ret = report_entry(loader, entry, EINVAL,
					   "'%s' is not NAME=VALUE (write %s= for an empty value)",
					   words[i], words[i]);
		} else if (!is_env_name(words[i], (size_t)(equals - words[i]))) {
			ret = report_entry(loader, entry, EINVAL,
					   "invalid variable name '%.*s' (use letters, digits and '_', not starting with a digit)",
					   (int)(equals - words[i]), words[i]);
		} else if (set_env(loader->config, words[i], (size_t)(equals - words[i])) < 0) {
			ret = report_entry(loader, entry, ENOMEM, "out of memory");
		}
	}
	shell_words__free(words);
	return ret;
}

static int apply_cwd(struct loader *loader, const struct entry *entry)
{
	int ret;

	if (!entry->value[0]) {
		free(loader->config->cwd);
		loader->config->cwd = NULL;
		return 0;
	}
	ret = check_guest_path(loader, entry, entry->value, true);
	if (ret)
		return ret;
	return replace_string(loader, entry, &loader->config->cwd);
}

static int apply_timeout(struct loader *loader, const struct entry *entry)
{
	unsigned long seconds;

	if (parse_unsigned(entry->value, INT_MAX, &seconds) < 0)
		return report_entry(loader, entry, EINVAL,
				    "invalid timeout '%s' (expected whole seconds such as 30, or 0 for none)",
				    entry->value);
	loader->config->timeout_seconds = (int)seconds;
	return 0;
}

/* ---- Collecting raw values (first pass) ---- */

static const struct key_spec *find_key(const char *section, const char *name, int *key)
{
	for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (!strcmp(key_specs[i].section, section) && !strcmp(key_specs[i].name, name)) {
			*key = i;
			return &key_specs[i];
		}
	}
	return NULL;
}

static bool is_core_section(const char *section)
{
	for (size_t i = 0; i < sizeof(core_sections) / sizeof(core_sections[0]); i++) {
		if (!strcmp(core_sections[i], section))
			return true;
	}
	return false;
}

static int report_unknown_key(struct loader *loader, const struct origin *origin,
			      const char *section, const char *name)
{
	char full_name[256];
	char known[256] = "";
	size_t used = 0;

	for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
		if (strcmp(key_specs[i].section, section))
			continue;
		used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
					 used ? ", " : "", key_specs[i].name);
	}
	snprintf(full_name, sizeof(full_name), "%s.%s", section, name);
	return report(loader, origin, full_name, EINVAL, "unknown key (known keys: %s)", known);
}

static struct entry *find_live_entry(struct loader *loader, int key)
{
	for (size_t i = 0; i < loader->entry_count; i++) {
		if (loader->entries[i].key == (enum config_key)key && !loader->entries[i].replaced)
			return &loader->entries[i];
	}
	return NULL;
}

static int add_entry(struct loader *loader, const struct origin *origin, int key,
		     const char *value, bool inline_comment)
{
	struct entry *existing = NULL;
	struct entry *entry;

	if (!key_specs[key].repeatable)
		existing = find_live_entry(loader, key);
	if (existing && !origin->override)
		return report(loader, origin, key_names[key], EINVAL,
			      "already set on line %d (remove one of the two lines)",
			      existing->origin.line);

	if (loader->entry_count == loader->entry_capacity) {
		size_t capacity = loader->entry_capacity ? loader->entry_capacity * 2 : 16;
		struct entry *entries = realloc(loader->entries, capacity * sizeof(*entries));

		if (!entries)
			return report(loader, origin, NULL, ENOMEM, "out of memory");
		loader->entries = entries;
		loader->entry_capacity = capacity;
	}
	entry = &loader->entries[loader->entry_count];
	*entry = (struct entry){
		.key = key,
		.value = strdup(value),
		.origin = *origin,
		.inline_comment = inline_comment,
	};
	if (!entry->value)
		return report(loader, origin, NULL, ENOMEM, "out of memory");
	if (existing)
		existing->replaced = true;

	loader->target = TARGET_ENTRY;
	loader->target_index = loader->entry_count++;
	return 0;
}

static struct config_section *find_device(struct machine_config *config, const char *name)
{
	for (size_t i = 0; i < config->device_count; i++) {
		if (!strcmp(config->devices[i].name, name))
			return &config->devices[i];
	}
	return NULL;
}

static struct config_section *add_device(struct machine_config *config, const char *name, int line)
{
	struct config_section *devices;
	char *copy = strdup(name);

	devices = copy ? realloc(config->devices, (config->device_count + 1) * sizeof(*devices))
		       : NULL;
	if (!devices) {
		free(copy);
		return NULL;
	}
	config->devices = devices;
	devices[config->device_count] = (struct config_section){ .name = copy, .line = line };
	return &devices[config->device_count++];
}

static void remove_device_values(struct config_section *device, const char *key)
{
	size_t kept = 0;

	for (size_t i = 0; i < device->count; i++) {
		if (!strcmp(device->values[i].key, key)) {
			free(device->values[i].key);
			free(device->values[i].value);
		} else {
			device->values[kept++] = device->values[i];
		}
	}
	device->count = kept;
}

/*
 * Store a [device.NAME] key as written. From the file every value is kept,
 * because the plugin decides whether a key may repeat; a --set replaces
 * every earlier value of its key.
 */
static int add_device_value(struct loader *loader, const struct origin *origin,
			    const char *section, const char *key, const char *value)
{
	const char *name = section + strlen(device_prefix);
	struct config_section *device = find_device(loader->config, name);
	struct config_value *values;
	char *key_copy, *value_copy;

	if (!device)
		device = add_device(loader->config, name, 0);
	if (!device)
		return report(loader, origin, NULL, ENOMEM, "out of memory");
	if (origin->override)
		remove_device_values(device, key);

	key_copy = strdup(key);
	value_copy = strdup(value);
	values = realloc(device->values, (device->count + 1) * sizeof(*values));
	if (values)
		device->values = values;
	if (!key_copy || !value_copy || !values) {
		free(key_copy);
		free(value_copy);
		return report(loader, origin, NULL, ENOMEM, "out of memory");
	}
	values[device->count] = (struct config_value){
		.key = key_copy,
		.value = value_copy,
		.line = origin->line,
	};

	loader->target = TARGET_DEVICE;
	loader->target_index = (size_t)(device - loader->config->devices);
	loader->target_value = device->count++;
	return 0;
}

/* Report a section name that is neither a core section nor a valid device.NAME; returns 0 when valid. */
static int check_section_name(struct loader *loader, const struct origin *origin,
			      const char *section)
{
	if (is_core_section(section))
		return 0;
	if (!strncmp(section, device_prefix, strlen(device_prefix))) {
		if (is_device_name(section + strlen(device_prefix)))
			return 0;
		return report(loader, origin, section, EINVAL,
			      "invalid device name '%s' (use letters, digits, '-' and '_', such as device.disk0)",
			      section + strlen(device_prefix));
	}
	return report(loader, origin, section, EINVAL, "unknown section (known sections: %s)",
		      known_sections);
}

/* Add one section.key = value pair from the file or from --set. */
static int add_pair(struct loader *loader, const struct origin *origin, const char *section,
		    const char *name, const char *value, bool inline_comment)
{
	const struct key_spec *spec;
	int key;
	int ret;

	if (!section[0])
		return report(loader, origin, name, EINVAL,
			      "key outside a section (put it under a header such as [machine])");
	ret = check_section_name(loader, origin, section);
	if (ret)
		return ret;
	if (!name[0])
		return report(loader, origin, section, EINVAL, "missing key name before '='");

	if (!strncmp(section, device_prefix, strlen(device_prefix)))
		return add_device_value(loader, origin, section, name, value);

	spec = find_key(section, name, &key);
	if (!spec)
		return report_unknown_key(loader, origin, section, name);
	return add_entry(loader, origin, key, value, inline_comment);
}

/* Append an indented continuation line to the value it continues. */
static int continue_value(struct loader *loader, const char *text)
{
	struct origin origin = { .line = loader->line };
	char **value;
	char *joined;

	if (loader->target == TARGET_DEVICE) {
		struct config_section *device = &loader->config->devices[loader->target_index];

		value = &device->values[loader->target_value].value;
	} else if (loader->target == TARGET_ENTRY) {
		struct entry *entry = &loader->entries[loader->target_index];

		if (!key_specs[entry->key].continues)
			return report(loader, &origin, key_names[entry->key], EINVAL,
				      "indented line continues this value, but it takes one line only (remove the indentation)");
		value = &entry->value;
	} else {
		return report(loader, &origin, NULL, EINVAL,
			      "indented line does not follow a key (remove the indentation)");
	}

	/* Continuation lines are joined with one space. */
	if (asprintf(&joined, "%s%s%s", *value, (*value)[0] ? " " : "", text) < 0)
		return report(loader, &origin, NULL, ENOMEM, "out of memory");
	free(*value);
	*value = joined;
	return 0;
}

/* inih's handler; returns nonzero on success as inih expects. */
static int handle_pair(void *user, const char *section, const char *name, const char *value)
{
	struct loader *loader = user;
	struct origin origin = { .line = loader->line };
	bool inline_comment;

	if (loader->error)
		return 0;
	if (loader->continuation)
		return continue_value(loader, value) == 0;

	inline_comment = *find_chars_or_comment(find_chars_or_comment(loader->raw_line, "=:") + 1,
						NULL) == ';';
	return add_pair(loader, &origin, section, name, value, inline_comment) == 0;
}

/* Check a "[section]" header line that starts at `text`; returns 0 or -EINVAL. */
static int read_section_header(struct loader *loader, const char *text)
{
	struct origin origin = { .line = loader->line };
	const char *end = find_chars_or_comment(text + 1, "]");
	const char *rest;
	char name[MAX_SECTION_NAME + 1];
	struct config_section *device;
	size_t length;

	if (*end != ']')
		return report_line(loader, "section header '%s' has no closing ']'", text);
	rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest && *rest != ';' && *rest != '#')
		return report_line(loader, "unexpected text after ']' in '%s'", text);

	length = (size_t)(end - text - 1);
	if (length > MAX_SECTION_NAME)
		return report(loader, &origin, NULL, EINVAL,
			      "section name is longer than %d characters", MAX_SECTION_NAME);
	memcpy(name, text + 1, length);
	name[length] = '\0';
	if (check_section_name(loader, &origin, name))
		return loader->error;

	loader->have_key = false;
	loader->target = TARGET_NONE;
	if (strncmp(name, device_prefix, strlen(device_prefix)))
		return 0;

	device = find_device(loader->config, name + strlen(device_prefix));
	if (device)
		return report(loader, &origin, name, EEXIST,
			      "section already started on line %d (give each device a unique name)",
			      device->line);
	if (!add_device(loader->config, name + strlen(device_prefix), loader->line))
		return report(loader, &origin, NULL, ENOMEM, "out of memory");
	return 0;
}

/*
 * Classify the line just read the way inih will, so that the handler can tell
 * continuation lines apart and section headers are checked even when no key
 * follows them. Returns 0 or -EINVAL.
 */
static int classify_line(struct loader *loader)
{
	const char *text = loader->raw_line;
	const char *start;
	char *trimmed;
	int ret = 0;

	/* inih skips a UTF-8 byte order mark on the first line. */
	if (loader->line == 1 && !strncmp(text, "\xEF\xBB\xBF", 3))
		text += 3;
	start = text;
	while (isspace((unsigned char)*start))
		start++;

	loader->continuation = false;
	if (!*start || *start == ';' || *start == '#')
		return 0;

	trimmed = strdup(start);
	if (!trimmed)
		return report_line(loader, "%s", "out of memory");
	for (size_t n = strlen(trimmed); n > 0 && isspace((unsigned char)trimmed[n - 1]); n--)
		trimmed[n - 1] = '\0';

	if (start > text && loader->have_key) {
		if (*start == '[')
			ret = report_line(loader,
					  "indented section header '%s' (remove the indentation)",
					  trimmed);
		else
			loader->continuation = true;
	} else if (*start == '[') {
		ret = read_section_header(loader, trimmed);
	} else if (*find_chars_or_comment(start, "=:") != '=' &&
		   *find_chars_or_comment(start, "=:") != ':') {
		ret = report_line(loader,
				  "invalid line '%s' (expected key = value, a [section] header or a comment)",
				  trimmed);
	} else {
		loader->have_key = true;
	}
	free(trimmed);
	return ret;
}

/* inih's reader: copies one line of the file into `buffer`; NULL at the end or on error. */
static char *read_line(char *buffer, int size, void *stream)
{
	struct loader *loader = stream;
	ssize_t length;

	if (loader->error)
		return NULL;
	errno = 0;
	length = getline(&loader->raw_line, &loader->raw_capacity, loader->file);
	if (length < 0) {
		struct origin origin = { 0 };

		if (ferror(loader->file))
			report(loader, &origin, NULL, errno ? errno : EIO, "cannot read: %s",
			       strerror(errno ? errno : EIO));
		return NULL;
	}
	loader->line++;
	if (length > 0 && loader->raw_line[length - 1] == '\n')
		loader->raw_line[--length] = '\0';

	if (memchr(loader->raw_line, '\0', (size_t)length)) {
		report_line(loader, "%s", "line contains a NUL byte");
		return NULL;
	}
	/* inih's line buffer has a fixed size (200 bytes in Debian's libinih 55). */
	if (length >= size) {
		struct origin origin = { .line = loader->line };

		report(loader, &origin, NULL, EINVAL,
		       "line is longer than %d characters (continue a long cmdline, file, argv or env value on indented lines)",
		       size - 1);
		return NULL;
	}
	if (classify_line(loader))
		return NULL;
	memcpy(buffer, loader->raw_line, (size_t)length + 1);
	return buffer;
}

/* Split one --set argument and add it; returns 0 or -errno. */
static int add_override(struct loader *loader, const char *text)
{
	struct origin origin = { .override = text };
	const char *equals = strchr(text, '=');
	char *name, *section, *key, *dot, *value;
	int ret;

	if (!equals)
		return report(loader, &origin, NULL, EINVAL,
			      "missing '=' (expected section.key=value, such as machine.memory=1G)");

	name = strndup(text, (size_t)(equals - text));
	value = strdup(equals + 1);
	if (!name || !value) {
		free(name);
		free(value);
		return report(loader, &origin, NULL, ENOMEM, "out of memory");
	}
	dot = strrchr(name, '.');
	if (!dot || dot == name) {
		ret = report(loader, &origin, NULL, EINVAL,
			     "missing section (expected section.key=value, such as machine.memory=1G)");
		goto out;
	}
	*dot = '\0';
	section = name;
	key = dot + 1;

	loader->target = TARGET_NONE;
	ret = add_pair(loader, &origin, section, key, value, false);
out:
	free(name);
	free(value);
	return ret;
}

static int read_file(struct loader *loader)
{
	struct origin origin = { 0 };
	struct stat st;
	int ret;

	loader->file = fopen(loader->config->path, "re");
	if (!loader->file)
		return report(loader, &origin, NULL, errno, "cannot open: %s", strerror(errno));
	if (fstat(fileno(loader->file), &st) == 0 && S_ISDIR(st.st_mode))
		return report(loader, &origin, NULL, EISDIR, "cannot open: %s", strerror(EISDIR));

	ret = ini_parse_stream(read_line, loader, handle_pair, loader);
	if (loader->error)
		return loader->error;
	/* Only a syntax error that classify_line() did not foresee gets here. */
	if (ret > 0) {
		origin.line = ret;
		return report(loader, &origin, NULL, EINVAL, "invalid line");
	}
	if (ret < 0)
		return report(loader, &origin, NULL, ENOMEM, "out of memory");
	return 0;
}

/* ---- Putting it together ---- */

static int set_defaults(struct machine_config *config)
{
	config->accelerator = strdup(CONFIG_DEFAULT_ACCELERATOR);
	config->memory_bytes = CONFIG_DEFAULT_MEMORY_BYTES;
	config->vcpus = 1;
	config->cpu_template = SMCORE_CPU_TEMPLATE_HOST;
	config->cmdline = strdup(CONFIG_DEFAULT_CMDLINE);
	config->argv = calloc(1, sizeof(*config->argv));
	config->env = calloc(1, sizeof(*config->env));
	if (!config->accelerator || !config->cmdline || !config->argv || !config->env)
		return -ENOMEM;
	return 0;
}

static int set_paths(struct machine_config *config, const char *path)
{
	char *copy = strdup(path);
	char *slash;

	config->path = strdup(path);
	if (!copy || !config->path) {
		free(copy);
		return -ENOMEM;
	}
	slash = strrchr(copy, '/');
	if (!slash)
		strcpy(copy, ".");
	else if (slash == copy)
		slash[1] = '\0';
	else
		*slash = '\0';
	config->dir = realpath(copy, NULL);
	free(copy);
	return config->dir ? 0 : -errno;
}

static int apply_entries(struct loader *loader)
{
	for (size_t i = 0; i < loader->entry_count; i++) {
		const struct entry *entry = &loader->entries[i];
		int ret;

		if (entry->replaced)
			continue;
		ret = key_specs[entry->key].apply(loader, entry);
		if (ret)
			return ret;
		loader->config->key_lines[entry->key] = entry->origin.line;
	}
	return 0;
}

static int check_devices(struct loader *loader, char *const *overrides, size_t override_count)
{
	struct machine_config *config = loader->config;

	for (size_t i = 0; i < config->device_count; i++) {
		const struct config_section *device = &config->devices[i];
		struct origin origin = { .line = device->line };
		char name[128];
		bool has_plugin = false;

		for (size_t v = 0; v < device->count; v++)
			has_plugin |= !strcmp(device->values[v].key, "plugin");
		if (has_plugin)
			continue;

		/* A section created by --set is reported at the first --set that named it. */
		snprintf(name, sizeof(name), "%s%s.", device_prefix, device->name);
		for (size_t o = 0; !origin.line && !origin.override && o < override_count; o++) {
			if (!strncmp(overrides[o], name, strlen(name)))
				origin.override = overrides[o];
		}
		snprintf(name, sizeof(name), "%s%s.plugin", device_prefix, device->name);
		return report(loader, &origin, name, EINVAL,
			      "missing (each device section names its plugin, such as plugin = dev-blk)");
	}
	return 0;
}

int config__load(struct machine_config *config, const char *path, char *const *overrides,
		 size_t override_count, struct sm_error *err)
{
	struct loader loader = { .config = config, .err = err };
	int ret;

	memset(config, 0, sizeof(*config));
	ret = set_paths(config, path);
	if (ret == 0)
		ret = set_defaults(config);
	if (ret) {
		struct origin origin = { 0 };

		if (!config->path) {
			sm_error__set(err, -ret, "%s: %s", path, strerror(-ret));
			goto out;
		}
		ret = report(&loader, &origin, NULL, -ret, "cannot open: %s", strerror(-ret));
		goto out;
	}

	ret = read_file(&loader);
	for (size_t i = 0; !ret && i < override_count; i++)
		ret = add_override(&loader, overrides[i]);
	if (!ret)
		ret = apply_entries(&loader);
	if (!ret)
		ret = check_devices(&loader, overrides, override_count);

out:
	if (loader.file)
		fclose(loader.file);
	free(loader.raw_line);
	for (size_t i = 0; i < loader.entry_count; i++)
		free(loader.entries[i].value);
	free(loader.entries);
	if (ret)
		config__free(config);
	return ret;
}

int config__set_argv(struct machine_config *config, char *const *argv, size_t argc,
		     struct sm_error *err)
{
	char **copy;

	if (argc == 0)
		return sm_error__set(err, EINVAL, "missing command after --");
	copy = calloc(argc + 1, sizeof(*copy));
	if (!copy)
		return sm_error__set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < argc; i++) {
		copy[i] = strdup(argv[i]);
		if (!copy[i]) {
			shell_words__free(copy);
			return sm_error__set(err, ENOMEM, "out of memory");
		}
	}

	shell_words__free(config->argv);
	config->argv = copy;
	config->argc = argc;
	config->key_lines[CONFIG_RUN_ARGV] = 0;
	return 0;
}

static void free_strings(char **strings, size_t count)
{
	if (!strings)
		return;
	for (size_t i = 0; i < count; i++)
		free(strings[i]);
	free(strings);
}

const struct config_value *config__section_value(const struct config_section *section, const char *key)
{
	const struct config_value *found = NULL;

	for (size_t i = 0; section && i < section->count; i++) {
		if (strcmp(section->values[i].key, key) == 0)
			found = &section->values[i];
	}
	return found;
}

void config__free(struct machine_config *config)
{
	free(config->path);
	free(config->dir);
	free(config->accelerator);
	free(config->console);
	free(config->plugin_dir);
	free(config->kernel);
	free(config->initrd);
	free(config->cmdline);
	for (size_t i = 0; i < config->file_count; i++) {
		free(config->files[i].host_path);
		free(config->files[i].guest_path);
	}
	free(config->files);
	free_strings(config->argv, config->argc);
	free_strings(config->env, config->env_count);
	free(config->cwd);
	free(config->rootfs_image);
	for (size_t i = 0; i < config->device_count; i++) {
		struct config_section *device = &config->devices[i];

		for (size_t v = 0; v < device->count; v++) {
			free(device->values[v].key);
			free(device->values[v].value);
		}
		free(device->values);
		free(device->name);
	}
	free(config->devices);
	memset(config, 0, sizeof(*config));
}
