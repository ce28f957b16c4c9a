/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer tars and image files for the OCI tests, built at run time. The
 * functions are static inline so that a test using only some of them builds
 * without unused-function warnings.
 */
#ifndef SMCORE_TEST_OCI_FIXTURES_H
#define SMCORE_TEST_OCI_FIXTURES_H

#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "sha256.h"

#define IMAGE_MAX_FILES 16
#define LAYER_BUFFER_SIZE (1u << 20)

enum filter { FILTER_NONE, FILTER_GZIP, FILTER_ZSTD };

struct layer_entry {
	const char *path;
	mode_t type;            /* AE_IFREG, AE_IFDIR, ... */
	mode_t perm;
	const char *data;       /* file contents, or the symlink target */
	const char *hard_link;  /* hard link target, or NULL */
	unsigned int uid, gid;
	unsigned int major, minor;
	const char *xattr;      /* "user.NAME" set to "value", or NULL */
};

struct image_file {
	char name[128];
	char *data;
	size_t size;
};

/* An image as a list of files, written out as a directory or a tar. */
struct image_files {
	struct image_file files[IMAGE_MAX_FILES];
	size_t count;
};

/*
 * Create a pax tar writer with `filter`. When this libarchive cannot add the
 * filter, return NULL and store libarchive's status in `status`.
 */
static inline struct archive *new_layer_writer(enum filter filter, int *status)
{
	struct archive *archive = archive_write_new();

	assert_non_null(archive);
	assert_int_equal(archive_write_set_format_pax_restricted(archive), ARCHIVE_OK);
	*status = ARCHIVE_OK;
	if (filter == FILTER_GZIP)
		*status = archive_write_add_filter_gzip(archive);
	else if (filter == FILTER_ZSTD)
		*status = archive_write_add_filter_zstd(archive);
	if (*status != ARCHIVE_OK) {
		archive_write_free(archive);
		return NULL;
	}
	return archive;
}

/* Write `entries` to the opened `archive`, then close and free it. */
static inline void write_layer_entries(struct archive *archive, const struct layer_entry *entries,
				       size_t count)
{
	struct archive_entry *entry = archive_entry_new();

	for (size_t i = 0; i < count; i++) {
		const struct layer_entry *item = &entries[i];
		size_t size = item->type == AE_IFREG && item->data && !item->hard_link ?
				      strlen(item->data) : 0;

		archive_entry_clear(entry);
		archive_entry_set_pathname(entry, item->path);
		archive_entry_set_filetype(entry, item->type);
		archive_entry_set_perm(entry, item->perm ? item->perm : 0644);
		archive_entry_set_uid(entry, item->uid);
		archive_entry_set_gid(entry, item->gid);
		archive_entry_set_mtime(entry, 1000000000, 0);
		archive_entry_set_size(entry, (la_int64_t)size);
		if (item->type == AE_IFLNK)
			archive_entry_set_symlink(entry, item->data);
		if (item->hard_link)
			archive_entry_set_hardlink(entry, item->hard_link);
		if (item->type == AE_IFCHR || item->type == AE_IFBLK) {
			archive_entry_set_rdevmajor(entry, item->major);
			archive_entry_set_rdevminor(entry, item->minor);
		}
		if (item->xattr)
			archive_entry_xattr_add_entry(entry, item->xattr, "value", 5);
		assert_int_equal(archive_write_header(archive, entry), ARCHIVE_OK);
		if (size > 0)
			assert_int_equal(archive_write_data(archive, item->data, size), (la_ssize_t)size);
	}
	assert_int_equal(archive_write_close(archive), ARCHIVE_OK);
	archive_write_free(archive);
	archive_entry_free(entry);
}

/* Write `entries` as a tar layer in memory with `filter`; the caller frees the result. */
static inline void *make_layer(enum filter filter, const struct layer_entry *entries, size_t count,
			       size_t *size)
{
	char *buffer = malloc(LAYER_BUFFER_SIZE);
	int status;
	struct archive *archive = new_layer_writer(filter, &status);

	assert_non_null(buffer);
	assert_int_equal(status, ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(archive, buffer, LAYER_BUFFER_SIZE, size), ARCHIVE_OK);
	write_layer_entries(archive, entries, count);
	return buffer;
}

static inline void add_file(struct image_files *image, const char *name, const void *data, size_t size)
{
	struct image_file *file = &image->files[image->count++];

	assert_true(image->count <= IMAGE_MAX_FILES);
	snprintf(file->name, sizeof(file->name), "%s", name);
	file->data = malloc(size + 1);
	assert_non_null(file->data);
	memcpy(file->data, data, size);
	file->size = size;
}

/* Add `data` as a content-addressed blob; writes "sha256:HEX" to `digest`. */
static inline void add_blob(struct image_files *image, const void *data, size_t size, char digest[72])
{
	char hex[65];
	char name[128];

	sha256__hex(data, size, hex);
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	snprintf(digest, 72, "sha256:%s", hex);
	add_file(image, name, data, size);
}

static inline void free_image_files(struct image_files *image)
{
	for (size_t i = 0; i < image->count; i++)
		free(image->files[i].data);
	image->count = 0;
}

/* Write each file of `image` below `dir`, which must not exist yet. */
static inline void write_directory(const struct image_files *image, const char *dir)
{
	char path[512];

	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (size_t i = 0; i < image->count; i++) {
		FILE *file;

		snprintf(path, sizeof(path), "%s/%s", dir, image->files[i].name);
		file = fopen(path, "w");
		assert_non_null(file);
		assert_int_equal(fwrite(image->files[i].data, 1, image->files[i].size, file),
				 image->files[i].size);
		fclose(file);
	}
}

/* Write `file` to `archive` as a regular file named `name`, reusing `entry`. */
static inline void write_tar_file(struct archive *archive, struct archive_entry *entry, const char *name,
				  const struct image_file *file)
{
	archive_entry_clear(entry);
	archive_entry_set_pathname(entry, name);
	archive_entry_set_filetype(entry, AE_IFREG);
	archive_entry_set_perm(entry, 0644);
	archive_entry_set_size(entry, (la_int64_t)file->size);
	assert_int_equal(archive_write_header(archive, entry), ARCHIVE_OK);
	assert_int_equal(archive_write_data(archive, file->data, file->size), (la_ssize_t)file->size);
}

/* Write `image` as a tar at `path`, with `prefix` before each file name. */
static inline void write_tar(const struct image_files *image, const char *path, const char *prefix)
{
	struct archive *archive = archive_write_new();
	struct archive_entry *entry = archive_entry_new();

	assert_int_equal(archive_write_set_format_pax_restricted(archive), ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(archive, path), ARCHIVE_OK);
	for (size_t i = 0; i < image->count; i++) {
		char name[256];

		snprintf(name, sizeof(name), "%s%s", prefix, image->files[i].name);
		write_tar_file(archive, entry, name, &image->files[i]);
	}
	assert_int_equal(archive_write_close(archive), ARCHIVE_OK);
	archive_write_free(archive);
	archive_entry_free(entry);
}

static inline int remove_path(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Remove `path` and everything below it, without following symlinks. */
static inline void remove_tree(const char *path)
{
	nftw(path, remove_path, 16, FTW_DEPTH | FTW_PHYS);
}

static inline bool exists_in(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static inline void assert_file_contains(const char *dir, const char *name, const char *expected)
{
	char path[512];
	char data[256] = { 0 };
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = fopen(path, "r");
	assert_non_null(file);
	assert_int_equal(fread(data, 1, sizeof(data) - 1, file), strlen(expected));
	fclose(file);
	assert_string_equal(data, expected);
}

#endif
