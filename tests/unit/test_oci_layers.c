/* SPDX-License-Identifier: Apache-2.0 */
/* Layer application: whiteouts, links, metadata and rejected paths, on layers built at run time. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "oci_fixtures.h"
#include "oci_layers.h"

struct fixture {
	char dir[64];
	char root[128];
	char outside[128];
	char layer[128];
};

/* Write `entries` as a tar layer at `path`; returns the result of adding the filter. */
static int write_layer(const char *path, enum filter filter, const struct layer_entry *entries,
		       size_t count)
{
	int status;
	struct archive *archive = new_layer_writer(filter, &status);

	if (archive == NULL)
		return status;
	assert_int_equal(archive_write_open_filename(archive, path), ARCHIVE_OK);
	write_layer_entries(archive, entries, count);
	return ARCHIVE_OK;
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	strcpy(fixture->dir, "/tmp/smcore-oci-layers-XXXXXX");
	assert_non_null(mkdtemp(fixture->dir));
	snprintf(fixture->root, sizeof(fixture->root), "%s/root", fixture->dir);
	snprintf(fixture->outside, sizeof(fixture->outside), "%s/outside", fixture->dir);
	snprintf(fixture->layer, sizeof(fixture->layer), "%s/layer.tar", fixture->dir);
	assert_int_equal(mkdir(fixture->root, 0755), 0);
	assert_int_equal(mkdir(fixture->outside, 0755), 0);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	remove_tree(fixture->dir);
	free(fixture);
	return 0;
}

static int apply(struct fixture *fixture, enum filter filter, const struct layer_entry *entries,
		 size_t count, struct sm_error *err)
{
	assert_int_equal(write_layer(fixture->layer, filter, entries, count), ARCHIVE_OK);
	sm_error__clear(err);
	return oci_layers__apply(fixture->layer, fixture->root, "test", err);
}

static void assert_outside_empty(struct fixture *fixture)
{
	char parent[128];

	assert_false(exists_in(fixture->outside, "evil"));
	assert_false(exists_in(fixture->dir, "evil"));
	snprintf(parent, sizeof(parent), "%s/..", fixture->dir);
	assert_false(exists_in(parent, "evil"));
	assert_false(exists_in("/", "evil"));
}

static void whiteout_removes_file(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry lower[] = {
		{ .path = "a", .type = AE_IFDIR, .perm = 0755 },
		{ .path = "a/gone", .type = AE_IFREG, .data = "old" },
		{ .path = "a/kept", .type = AE_IFREG, .data = "kept" },
		{ .path = "a/tree/deep", .type = AE_IFREG, .data = "x" },
	};
	const struct layer_entry upper[] = {
		{ .path = "a/.wh.gone", .type = AE_IFREG },
		{ .path = "a/.wh.tree", .type = AE_IFREG },
	};

	assert_int_equal(apply(fixture, FILTER_NONE, lower, 4, &err), 0);
	assert_true(exists_in(fixture->root, "a/gone"));
	assert_int_equal(apply(fixture, FILTER_NONE, upper, 2, &err), 0);
	assert_false(exists_in(fixture->root, "a/gone"));
	assert_false(exists_in(fixture->root, "a/tree"));
	assert_false(exists_in(fixture->root, "a/.wh.gone"));
	assert_file_contains(fixture->root, "a/kept", "kept");
}

static void opaque_directory_hides_lower(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry lower[] = {
		{ .path = "d/old", .type = AE_IFREG, .data = "old" },
		{ .path = "d/sub/x", .type = AE_IFREG, .data = "x" },
		{ .path = "other", .type = AE_IFREG, .data = "other" },
	};
	/* The marker after the new file checks that it hides lower layers only. */
	const struct layer_entry upper[] = {
		{ .path = "d", .type = AE_IFDIR, .perm = 0755 },
		{ .path = "d/new", .type = AE_IFREG, .data = "new" },
		{ .path = "d/.wh..wh..opq", .type = AE_IFREG },
	};

	assert_int_equal(apply(fixture, FILTER_NONE, lower, 3, &err), 0);
	assert_int_equal(apply(fixture, FILTER_NONE, upper, 3, &err), 0);
	assert_false(exists_in(fixture->root, "d/old"));
	assert_false(exists_in(fixture->root, "d/sub"));
	assert_false(exists_in(fixture->root, "d/.wh..wh..opq"));
	assert_file_contains(fixture->root, "d/new", "new");
	assert_file_contains(fixture->root, "other", "other");
}

static void hard_link_across_layers(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry lower[] = {
		{ .path = "bin/tool", .type = AE_IFREG, .perm = 0755, .data = "tool" },
	};
	const struct layer_entry upper[] = {
		{ .path = "usr/bin/alias", .type = AE_IFREG, .hard_link = "bin/tool" },
		{ .path = "./same", .type = AE_IFREG, .hard_link = "./bin/tool" },
	};
	char path[512];
	struct stat target, link, same;

	assert_int_equal(apply(fixture, FILTER_NONE, lower, 1, &err), 0);
	assert_int_equal(apply(fixture, FILTER_NONE, upper, 2, &err), 0);
	snprintf(path, sizeof(path), "%s/bin/tool", fixture->root);
	assert_int_equal(stat(path, &target), 0);
	snprintf(path, sizeof(path), "%s/usr/bin/alias", fixture->root);
	assert_int_equal(stat(path, &link), 0);
	snprintf(path, sizeof(path), "%s/same", fixture->root);
	assert_int_equal(stat(path, &same), 0);
	assert_int_equal(target.st_ino, link.st_ino);
	assert_int_equal(target.st_ino, same.st_ino);
	assert_int_equal(target.st_nlink, 3);
}

static void file_through_symlink_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry entries[] = {
		{ .path = "link", .type = AE_IFLNK, .data = "../outside" },
		{ .path = "link/evil", .type = AE_IFREG, .data = "evil" },
	};
	const struct layer_entry absolute[] = {
		{ .path = "abs", .type = AE_IFLNK, .data = fixture->outside },
		{ .path = "abs/evil", .type = AE_IFREG, .data = "evil" },
	};

	assert_int_equal(apply(fixture, FILTER_NONE, entries, 2, &err), -ELOOP);
	assert_non_null(strstr(err.message, "layer test"));
	assert_non_null(strstr(err.message, "link/evil"));
	assert_non_null(strstr(err.message, "symlink"));
	assert_outside_empty(fixture);

	assert_int_equal(apply(fixture, FILTER_NONE, absolute, 2, &err), -ELOOP);
	assert_non_null(strstr(err.message, "abs/evil"));
	assert_outside_empty(fixture);
}

static void dot_dot_entry_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry parent[] = { { .path = "../evil", .type = AE_IFREG, .data = "e" } };
	const struct layer_entry inner[] = {
		{ .path = "a/../../outside/evil", .type = AE_IFREG, .data = "e" },
	};

	assert_int_equal(apply(fixture, FILTER_NONE, parent, 1, &err), -EPERM);
	assert_non_null(strstr(err.message, "entry ../evil"));
	assert_non_null(strstr(err.message, "layer test"));
	assert_outside_empty(fixture);

	assert_int_equal(apply(fixture, FILTER_NONE, inner, 1, &err), -EPERM);
	assert_non_null(strstr(err.message, "a/../../outside/evil"));
	assert_false(exists_in(fixture->root, "a"));
	assert_outside_empty(fixture);
}

static void absolute_path_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char path[256];
	struct layer_entry entries[] = { { .path = path, .type = AE_IFREG, .data = "e" } };

	snprintf(path, sizeof(path), "%s/evil", fixture->outside);
	assert_int_equal(apply(fixture, FILTER_NONE, entries, 1, &err), -EPERM);
	assert_non_null(strstr(err.message, path));
	assert_non_null(strstr(err.message, "absolute"));
	assert_outside_empty(fixture);
}

/* A very long entry name is shortened, so the reason still fits in the message. */
static void long_entry_name_keeps_reason(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char path[6001];
	struct layer_entry entries[] = { { .path = path, .type = AE_IFREG, .data = "e" } };

	for (size_t i = 0; i < 3000; i++)
		memcpy(path + 2 * i, "d/", 2);
	path[6000] = '\0';
	path[5999] = 'f';
	assert_true(apply(fixture, FILTER_NONE, entries, 1, &err) < 0);
	assert_non_null(strstr(err.message, "d/d/d/"));
	assert_non_null(strstr(err.message, "(6000 bytes)"));
	assert_non_null(strstr(err.message, "too long"));
	assert_outside_empty(fixture);
}

static void escaping_hard_link_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry dot_dot[] = {
		{ .path = "h", .type = AE_IFREG, .hard_link = "../outside/secret" },
	};
	const struct layer_entry through_symlink[] = {
		{ .path = "l", .type = AE_IFLNK, .data = "../outside" },
		{ .path = "h", .type = AE_IFREG, .hard_link = "l/secret" },
	};
	char secret[256];
	FILE *file;

	snprintf(secret, sizeof(secret), "%s/secret", fixture->outside);
	file = fopen(secret, "w");
	assert_non_null(file);
	fclose(file);

	assert_int_equal(apply(fixture, FILTER_NONE, dot_dot, 1, &err), -EPERM);
	assert_non_null(strstr(err.message, "../outside/secret"));
	assert_false(exists_in(fixture->root, "h"));

	assert_int_equal(apply(fixture, FILTER_NONE, through_symlink, 2, &err), -ELOOP);
	assert_non_null(strstr(err.message, "l/secret"));
	assert_false(exists_in(fixture->root, "h"));
}

static void compressed_layer(void **state, enum filter filter, const char *name)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry entries[] = {
		{ .path = "etc/hostname", .type = AE_IFREG, .data = "compressed\n" },
	};

	if (write_layer(fixture->layer, filter, entries, 1) != ARCHIVE_OK) {
		print_message("libarchive here cannot write %s, test skipped\n", name);
		skip();
	}
	assert_int_equal(oci_layers__apply(fixture->layer, fixture->root, name, &err), 0);
	assert_file_contains(fixture->root, "etc/hostname", "compressed\n");
}

static void gzip_layer(void **state)
{
	compressed_layer(state, FILTER_GZIP, "gzip");
}

static void zstd_layer(void **state)
{
	compressed_layer(state, FILTER_ZSTD, "zstd");
}

static void modes_owners_times_kept(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry entries[] = {
		{ .path = "private", .type = AE_IFDIR, .perm = 0700, .uid = 42, .gid = 43 },
		{ .path = "private/suid", .type = AE_IFREG, .perm = 04755, .data = "s",
		  .uid = 1234, .gid = 5678 },
		{ .path = "sym", .type = AE_IFLNK, .data = "private/suid", .uid = 7, .gid = 8 },
	};
	char path[512];
	struct stat st;

	assert_int_equal(apply(fixture, FILTER_NONE, entries, 3, &err), 0);
	snprintf(path, sizeof(path), "%s/private/suid", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_mtime, 1000000000);
	if (geteuid() == 0) {
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 5678);
	}

	snprintf(path, sizeof(path), "%s/private", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_mtime, 1000000000);
	if (geteuid() == 0)
		assert_int_equal(st.st_uid, 42);

	snprintf(path, sizeof(path), "%s/sym", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mtime, 1000000000);
	if (geteuid() == 0)
		assert_int_equal(st.st_uid, 7);
}

static void xattr_kept(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry entries[] = {
		{ .path = "tagged", .type = AE_IFREG, .data = "t", .xattr = "user.smcore" },
	};
	char path[512];
	char value[16] = { 0 };

	snprintf(path, sizeof(path), "%s/probe", fixture->root);
	fclose(fopen(path, "w"));
	if (setxattr(path, "user.probe", "1", 1, 0) < 0) {
		print_message("user xattrs not supported under /tmp, test skipped\n");
		skip();
	}
	assert_int_equal(apply(fixture, FILTER_NONE, entries, 1, &err), 0);
	snprintf(path, sizeof(path), "%s/tagged", fixture->root);
	assert_int_equal(getxattr(path, "user.smcore", value, sizeof(value)), 5);
	assert_string_equal(value, "value");
}

static void device_node_and_fifo(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry entries[] = {
		{ .path = "dev/null", .type = AE_IFCHR, .perm = 0666, .major = 1, .minor = 3 },
		{ .path = "dev/loop9", .type = AE_IFBLK, .perm = 0660, .major = 7, .minor = 9 },
		{ .path = "run/pipe", .type = AE_IFIFO, .perm = 0620 },
	};
	char path[512];
	struct stat st;

	if (geteuid() != 0) {
		print_message("device nodes need root, test skipped\n");
		skip();
	}
	assert_int_equal(apply(fixture, FILTER_NONE, entries, 3, &err), 0);
	snprintf(path, sizeof(path), "%s/dev/null", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(major(st.st_rdev), 1);
	assert_int_equal(minor(st.st_rdev), 3);
	assert_int_equal(st.st_mode & 07777, 0666);
	snprintf(path, sizeof(path), "%s/dev/loop9", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISBLK(st.st_mode));
	assert_int_equal(minor(st.st_rdev), 9);
	snprintf(path, sizeof(path), "%s/run/pipe", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0620);
}

static void file_replaces_lower_directory(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry lower[] = {
		{ .path = "x/inner", .type = AE_IFREG, .data = "inner" },
		{ .path = "y", .type = AE_IFREG, .data = "file" },
	};
	const struct layer_entry upper[] = {
		{ .path = "x", .type = AE_IFREG, .data = "now a file" },
		{ .path = "y", .type = AE_IFDIR, .perm = 0755 },
		{ .path = "y/z", .type = AE_IFREG, .data = "z" },
	};

	assert_int_equal(apply(fixture, FILTER_NONE, lower, 2, &err), 0);
	assert_int_equal(apply(fixture, FILTER_NONE, upper, 3, &err), 0);
	assert_file_contains(fixture->root, "x", "now a file");
	assert_file_contains(fixture->root, "y/z", "z");
}

static void lower_symlink_replaced_not_followed(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char target[256];
	struct layer_entry lower[] = {
		{ .path = "file", .type = AE_IFLNK, .data = target },
		{ .path = "dir", .type = AE_IFLNK, .data = "../outside" },
	};
	const struct layer_entry upper[] = {
		{ .path = "file", .type = AE_IFREG, .data = "new" },
		{ .path = "dir", .type = AE_IFDIR, .perm = 0755 },
		{ .path = "dir/evil", .type = AE_IFREG, .data = "inside" },
	};
	char path[512];
	struct stat st;
	FILE *file;

	snprintf(target, sizeof(target), "%s/target", fixture->outside);
	file = fopen(target, "w");
	assert_non_null(file);
	fputs("old", file);
	fclose(file);

	assert_int_equal(apply(fixture, FILTER_NONE, lower, 2, &err), 0);
	assert_int_equal(apply(fixture, FILTER_NONE, upper, 3, &err), 0);
	assert_file_contains(fixture->outside, "target", "old");
	assert_outside_empty(fixture);
	snprintf(path, sizeof(path), "%s/file", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	snprintf(path, sizeof(path), "%s/dir", fixture->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_file_contains(fixture->root, "dir/evil", "inside");
}

static void missing_layer_named(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };

	assert_true(oci_layers__apply("/nonexistent/layer.tar", fixture->root, "sha256:abc", &err) < 0);
	assert_non_null(strstr(err.message, "sha256:abc"));
	assert_non_null(strstr(err.message, "/nonexistent/layer.tar"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(whiteout_removes_file, setup, teardown),
		cmocka_unit_test_setup_teardown(opaque_directory_hides_lower, setup, teardown),
		cmocka_unit_test_setup_teardown(hard_link_across_layers, setup, teardown),
		cmocka_unit_test_setup_teardown(file_through_symlink_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(dot_dot_entry_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(absolute_path_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(long_entry_name_keeps_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(escaping_hard_link_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(gzip_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(zstd_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(modes_owners_times_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(xattr_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(device_node_and_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(file_replaces_lower_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(lower_symlink_replaced_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_layer_named, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
