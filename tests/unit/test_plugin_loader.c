/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin loader against real shared objects built by tests/unit/plugins. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin_loader.h"

static void plugin_path(char *path, size_t size, const char *name)
{
	snprintf(path, size, "%s/%s.so", TEST_PLUGIN_DIR, name);
}

static void expect_rejection(const char *name, int expected_code, const char *const *fragments)
{
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	char path[512];
	int ret;

	plugin_path(path, sizeof(path), name);
	ret = plugin__open(path, &plugin, &err);
	assert_int_equal(ret, -expected_code);
	assert_null(plugin);
	assert_non_null(strstr(err.message, path));
	for (size_t i = 0; fragments[i]; i++) {
		if (!strstr(err.message, fragments[i]))
			fail_msg("message '%s' lacks '%s'", err.message, fragments[i]);
	}
}

static void open_good_accelerator(void **state)
{
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	char path[512];

	plugin_path(path, sizeof(path), "test-good-accel");
	assert_int_equal(plugin__open(path, &plugin, &err), 0);
	assert_string_equal(plugin->desc.name, "test-good-accel");
	assert_string_equal(plugin->desc.version, "1.2.3");
	assert_int_equal(plugin->desc.kind, SMCORE_PLUGIN_ACCELERATOR);
	assert_non_null(plugin->ops.accel.run_vcpu);
	/* Optional callbacks the plugin left out read as NULL. */
	assert_null(plugin->ops.accel.probe);
	assert_null(plugin->ops.accel.irqfd);
	assert_int_equal(plugin->ops.accel.create(NULL, NULL, NULL, NULL), -ENOSYS);
	plugin__close(plugin);
}

static void reject_abi_major(void **state)
{
	char expected_plugin[32], expected_core[32];
	const char *fragments[] = { "ABI mismatch", expected_plugin, expected_core, NULL };

	snprintf(expected_plugin, sizeof(expected_plugin), "ABI %d.3", SMCORE_ABI_MAJOR + 1);
	snprintf(expected_core, sizeof(expected_core), "ABI %d.%d", SMCORE_ABI_MAJOR, SMCORE_ABI_MINOR);
	expect_rejection("test-abi-major", EPROTO, fragments);
}

static void reject_big_descriptor(void **state)
{
	char size[64];
	const char *fragments[] = { "descriptor is", size, "knows only", NULL };

	snprintf(size, sizeof(size), "%zu bytes", sizeof(struct smcore_plugin_descriptor) + 64);
	expect_rejection("test-big-descriptor", EPROTO, fragments);
}

static void reject_big_ops(void **state)
{
	char size[64];
	const char *fragments[] = { "accelerator vtable", size, "knows only", NULL };

	snprintf(size, sizeof(size), "%zu bytes", sizeof(struct smcore_accel_ops) + 8);
	expect_rejection("test-big-ops", EPROTO, fragments);
}

static void reject_missing_callback(void **state)
{
	const char *fragments[] = { "lacks the required callback 'run_vcpu'", NULL };

	expect_rejection("test-missing-callback", EPROTO, fragments);
}

static void reject_unknown_kind(void **state)
{
	const char *fragments[] = { "unknown plugin kind 99", NULL };

	expect_rejection("test-unknown-kind", EPROTO, fragments);
}

static void reject_no_descriptor(void **state)
{
	const char *fragments[] = { "no 'smcore_plugin_descriptor' symbol", NULL };

	expect_rejection("test-no-descriptor", ENOEXEC, fragments);
}

static void reject_no_name(void **state)
{
	const char *fragments[] = { "has no name", NULL };

	expect_rejection("test-no-name", EPROTO, fragments);
}

static void reject_missing_file(void **state)
{
	const char *fragments[] = { "cannot open plugin", "No such file", NULL };

	expect_rejection("does-not-exist", ENOENT, fragments);
}

static void reject_text_file(void **state)
{
	char path[] = "/tmp/smcore-test-plugin-XXXXXX.so";
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	int fd;

	fd = mkstemps(path, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a plugin\n", 13), 13);
	close(fd);
	assert_int_equal(plugin__open(path, &plugin, &err), -ENOEXEC);
	assert_non_null(strstr(err.message, "not a shared object"));
	assert_non_null(strstr(err.message, path));
	unlink(path);
}

static void reject_truncated_elf(void **state)
{
	char path[] = "/tmp/smcore-test-plugin-XXXXXX.so";
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	int fd;

	fd = mkstemps(path, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\177ELF\2\1\1", 7), 7);
	close(fd);
	assert_int_equal(plugin__open(path, &plugin, &err), -ENOEXEC);
	assert_non_null(strstr(err.message, "no ELF header"));
	unlink(path);
}

/* The first 3000 bytes of a real plugin: its segments lie past the end, which dlopen would fault on. */
static void reject_truncated_plugin(void **state)
{
	char path[] = "/tmp/smcore-test-plugin-XXXXXX.so";
	char good[512], head[3000];
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	FILE *source;
	int fd;

	plugin_path(good, sizeof(good), "test-good-accel");
	source = fopen(good, "rb");
	assert_non_null(source);
	assert_int_equal(fread(head, 1, sizeof(head), source), sizeof(head));
	fclose(source);
	fd = mkstemps(path, 3);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);

	assert_int_equal(plugin__open(path, &plugin, &err), -ENOEXEC);
	assert_non_null(strstr(err.message, "lies past the end of the file"));
	assert_null(plugin);
	unlink(path);
}

static void reject_fifo(void **state)
{
	char dir[] = "/tmp/smcore-test-fifo-XXXXXX";
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };
	char path[600];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/hv-kvm.so", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* A FIFO would block open() forever; the loader must not open it. */
	assert_int_equal(plugin__open(path, &plugin, &err), -ENOEXEC);
	assert_non_null(strstr(err.message, "not a regular file"));
	unlink(path);
	rmdir(dir);
}

static void find_along_search_path(void **state)
{
	char *dirs[] = { "/nonexistent-smcore-dir:" TEST_PLUGIN_DIR };
	struct plugin_search search;
	struct sm_plugin *plugin = NULL;
	struct sm_error err = { 0 };

	unsetenv("SMCORE_PLUGIN_PATH");
	assert_int_equal(plugin_search__init(&search, dirs, 1, NULL), 0);
	assert_true(search.count >= 2);
	assert_string_equal(search.dirs[0], "/nonexistent-smcore-dir");
	assert_string_equal(search.dirs[1], TEST_PLUGIN_DIR);

	assert_int_equal(plugin__find(&search, "test-good-accel", SMCORE_PLUGIN_ACCELERATOR, &plugin, &err), 0);
	assert_string_equal(plugin->desc.name, "test-good-accel");
	plugin__close(plugin);

	/* The right file of the wrong kind is rejected with both kinds named. */
	assert_int_equal(plugin__find(&search, "test-good-device", SMCORE_PLUGIN_ACCELERATOR, &plugin, &err),
			 -EINVAL);
	assert_non_null(strstr(err.message, "has kind device, expected kind accelerator"));

	assert_int_equal(plugin__find(&search, "no-such-plugin", SMCORE_PLUGIN_ACCELERATOR, &plugin, &err),
			 -ENOENT);
	assert_non_null(strstr(err.message, "accelerator plugin 'no-such-plugin' not found"));
	assert_non_null(strstr(err.message, "/nonexistent-smcore-dir"));
	plugin_search__free(&search);
}

static void search_order(void **state)
{
	char *dirs[] = { "/cli-a:/cli-b", "/cli-c" };
	struct plugin_search search;

	setenv("SMCORE_PLUGIN_PATH", "/env-a::/env-b", 1);
	assert_int_equal(plugin_search__init(&search, dirs, 2, "/config-dir"), 0);
	assert_true(search.count >= 6);
	assert_string_equal(search.dirs[0], "/cli-a");
	assert_string_equal(search.dirs[1], "/cli-b");
	assert_string_equal(search.dirs[2], "/cli-c");
	assert_string_equal(search.dirs[3], "/env-a");
	assert_string_equal(search.dirs[4], "/env-b");
	assert_string_equal(search.dirs[5], "/config-dir");
	plugin_search__free(&search);
	unsetenv("SMCORE_PLUGIN_PATH");
}

/* Check that the line of `text` containing `key` also contains `first` and `second`. */
static void expect_line(const char *text, const char *key, const char *first, const char *second)
{
	const char *at = strstr(text, key);
	const char *start, *end;
	char line[1024];

	if (!at)
		fail_msg("no line with '%s' in:\n%s", key, text);
	for (start = at; start > text && start[-1] != '\n'; start--)
		;
	end = strchr(at, '\n');
	snprintf(line, sizeof(line), "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
	if (!strstr(line, first) || !strstr(line, second))
		fail_msg("line '%s' lacks '%s' or '%s'", line, first, second);
}

static void list_reports_rejections(void **state)
{
	char *dirs[] = { TEST_PLUGIN_DIR };
	struct plugin_search search;
	char *text = NULL;
	size_t size = 0;
	FILE *out;
	int found;

	unsetenv("SMCORE_PLUGIN_PATH");
	assert_int_equal(plugin_search__init(&search, dirs, 1, NULL), 0);
	out = open_memstream(&text, &size);
	assert_non_null(out);
	found = plugin__list(&search, out);
	fclose(out);
	plugin_search__free(&search);

	assert_true(found >= 2);
	expect_line(text, "test-good-accel ", "accelerator", "1.2.3");
	expect_line(text, "test-good-device ", "device", "1.2.3");
	expect_line(text, "test-abi-major.so", "rejected:", "ABI mismatch");
	expect_line(text, "test-missing-callback.so", "rejected:", "'run_vcpu'");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_good_accelerator),
		cmocka_unit_test(reject_abi_major),
		cmocka_unit_test(reject_big_descriptor),
		cmocka_unit_test(reject_big_ops),
		cmocka_unit_test(reject_missing_callback),
		cmocka_unit_test(reject_unknown_kind),
		cmocka_unit_test(reject_no_descriptor),
		cmocka_unit_test(reject_no_name),
		cmocka_unit_test(reject_missing_file),
		cmocka_unit_test(reject_text_file),
		cmocka_unit_test(reject_truncated_elf),
		cmocka_unit_test(reject_truncated_plugin),
		cmocka_unit_test(reject_fifo),
		cmocka_unit_test(find_along_search_path),
		cmocka_unit_test(search_order),
		cmocka_unit_test(list_reports_rejections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
