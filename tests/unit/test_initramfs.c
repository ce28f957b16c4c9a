/* SPDX-License-Identifier: Apache-2.0 */
/* The initramfs packer, read back with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "initramfs.h"

struct entry {
	char path[256];
	mode_t mode;
	dev_t rdev;
	char data[256];
	size_t size;
};

/* Unpack `data` into `entries`; returns the entry count. */
static size_t unpack(const uint8_t *data, size_t size, struct entry *entries, size_t max)
{
	struct archive *archive = archive_read_new();
	struct archive_entry *header;
	size_t count = 0;

	archive_read_support_format_cpio(archive);
	assert_int_equal(archive_read_open_memory(archive, data, size), ARCHIVE_OK);
	while (count < max && archive_read_next_header(archive, &header) == ARCHIVE_OK) {
		struct entry *entry = &entries[count++];
		la_ssize_t got;

		snprintf(entry->path, sizeof(entry->path), "%s", archive_entry_pathname(header));
		entry->mode = archive_entry_mode(header);
		entry->rdev = archive_entry_rdev(header);
		got = archive_read_data(archive, entry->data, sizeof(entry->data));
		entry->size = got > 0 ? (size_t)got : 0;
	}
	archive_read_free(archive);
	return count;
}

static const struct entry *find(const struct entry *entries, size_t count, const char *path)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(entries[i].path, path) == 0)
			return &entries[i];
	}
	fail_msg("no entry '%s' in the archive", path);
	return NULL;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *file = fopen(path, "w");

	assert_non_null(file);
	fputs(text, file);
	fclose(file);
	chmod(path, mode);
}

static void run_file_encoding(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "echo 'a b'", "", NULL };
	char *env[] = { "A=1", NULL };
	static const char expected[] =
		"argv\0/bin/sh\0argv\0-c\0argv\0echo 'a b'\0argv\0\0env\0A=1\0cwd\0/work\0";
	static const char expected_root[] =
		"argv\0/bin/sh\0argv\0-c\0argv\0echo 'a b'\0argv\0\0root\0/dev/vda\0root_type\0squashfs\0user\0app:1000\0";
	uint8_t *data;
	size_t size;

	assert_int_equal(initramfs__encode_run(&(struct initramfs_run){ .argv = argv, .env = env, .cwd = "/work" },
					       &data, &size), 0);
	assert_int_equal(size, sizeof(expected) - 1);
	assert_memory_equal(data, expected, size);
	free(data);

	assert_int_equal(initramfs__encode_run(&(struct initramfs_run){ .argv = argv }, &data, &size), 0);
	assert_int_equal(size, 43); /* four argv pairs, the last one empty */
	free(data);

	/* An empty user means root and is left out. */
	assert_int_equal(initramfs__encode_run(&(struct initramfs_run){ .argv = argv, .root = "/dev/vda",
					       .root_type = "squashfs", .user = "app:1000" }, &data, &size), 0);
	assert_int_equal(size, sizeof(expected_root) - 1);
	assert_memory_equal(data, expected_root, size);
	free(data);
}

static void archive_has_init_console_and_files(void **state)
{
	char dir[] = "/tmp/smcore-initramfs-XXXXXX";
	char init[300], tool[300];
	struct initramfs_file files[1];
	char *argv[] = { "/usr/bin/tool", "--flag", NULL };
	struct initramfs_spec spec;
	struct entry entries[32];
	const struct entry *entry;
	struct sm_error err = { 0 };
	uint8_t *data;
	size_t size, count;

	assert_non_null(mkdtemp(dir));
	snprintf(init, sizeof(init), "%s/init", dir);
	snprintf(tool, sizeof(tool), "%s/tool", dir);
	write_file(init, "INIT", 0700);
	write_file(tool, "TOOL", 0750);
	files[0] = (struct initramfs_file){ tool, "/usr/bin/tool" };
	spec = (struct initramfs_spec){ .init_path = init, .files = files, .file_count = 1, .run.argv = argv };

	assert_int_equal(initramfs__build(&spec, &data, &size, &err), 0);
	assert_int_equal(size % 4, 0);
	count = unpack(data, size, entries, 32);

	entry = find(entries, count, "init");
	assert_int_equal(entry->mode, S_IFREG | 0755);
	assert_int_equal(entry->size, 4);
	assert_memory_equal(entry->data, "INIT", 4);

	entry = find(entries, count, "dev/console");
	assert_true(S_ISCHR(entry->mode));
	assert_int_equal(major(entry->rdev), 5);
	assert_int_equal(minor(entry->rdev), 1);

	assert_true(S_ISDIR(find(entries, count, "usr")->mode));
	assert_true(S_ISDIR(find(entries, count, "usr/bin")->mode));
	entry = find(entries, count, "usr/bin/tool");
	assert_int_equal(entry->mode, S_IFREG | 0750);
	assert_memory_equal(entry->data, "TOOL", 4);

	entry = find(entries, count, "smcore/run");
	assert_int_equal(entry->size, sizeof("argv\0/usr/bin/tool\0argv\0--flag\0") - 1);
	assert_memory_equal(entry->data, "argv\0/usr/bin/tool\0argv\0--flag\0", entry->size);
	free(data);

	unlink(init);
	unlink(tool);
	rmdir(dir);
}

static void missing_file_named_in_error(void **state)
{
	struct initramfs_file files[] = { { "/nonexistent/smcore-file", "/bin/x" } };
	char *argv[] = { "/bin/x", NULL };
	struct initramfs_spec spec = {
		.init_path = "/bin/sh", .files = files, .file_count = 1, .run.argv = argv,
	};
	struct sm_error err = { 0 };
	uint8_t *data = NULL;
	size_t size;

	assert_int_equal(initramfs__build(&spec, &data, &size, &err), -ENOENT);
	assert_null(data);
	assert_non_null(strstr(err.message, "/nonexistent/smcore-file"));
	assert_non_null(strstr(err.message, "No such file"));
}

static void directory_rejected_as_file(void **state)
{
	struct initramfs_file files[] = { { "/tmp", "/x" } };
	char *argv[] = { "/x", NULL };
	struct initramfs_spec spec = {
		.init_path = "/bin/sh", .files = files, .file_count = 1, .run.argv = argv,
	};
	struct sm_error err = { 0 };
	uint8_t *data = NULL;
	size_t size;

	assert_int_equal(initramfs__build(&spec, &data, &size, &err), -EINVAL);
	assert_non_null(strstr(err.message, "/tmp: not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(run_file_encoding),
		cmocka_unit_test(archive_has_init_console_and_files),
		cmocka_unit_test(missing_file_named_in_error),
		cmocka_unit_test(directory_rejected_as_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
