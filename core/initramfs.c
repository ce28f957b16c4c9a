/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host_file.h"

struct buffer {
	uint8_t *data;
	size_t size;
	size_t capacity;
};

static int buffer_append(struct buffer *buf, const void *data, size_t len)
{
	if (buf->size + len > buf->capacity) {
		size_t capacity = buf->capacity ? buf->capacity : 4096;
		uint8_t *grown;

		while (capacity < buf->size + len)
			capacity *= 2;
		grown = realloc(buf->data, capacity);
		if (!grown)
			return -ENOMEM;
		buf->data = grown;
		buf->capacity = capacity;
	}
	memcpy(buf->data + buf->size, data, len);
	buf->size += len;
	return 0;
}

static int append_pair(struct buffer *buf, const char *key, const char *value)
{
	int ret = buffer_append(buf, key, strlen(key) + 1);

	return ret ? ret : buffer_append(buf, value, strlen(value) + 1);
}

int initramfs__encode_run(const struct initramfs_run *run, uint8_t **data, size_t *size)
{
	struct buffer buf = { 0 };
	int ret = 0;

	for (size_t i = 0; run->argv && run->argv[i] && !ret; i++)
		ret = append_pair(&buf, "argv", run->argv[i]);
	for (size_t i = 0; run->env && run->env[i] && !ret; i++)
		ret = append_pair(&buf, "env", run->env[i]);
	if (run->cwd && !ret)
		ret = append_pair(&buf, "cwd", run->cwd);
	if (run->root && !ret)
		ret = append_pair(&buf, "root", run->root);
	if (run->root && run->root_type && !ret)
		ret = append_pair(&buf, "root_type", run->root_type);
	if (run->user && run->user[0] && !ret)
		ret = append_pair(&buf, "user", run->user);
	if (ret) {
		free(buf.data);
		return ret;
	}
	*data = buf.data;
	*size = buf.size;
	return 0;
}

static la_ssize_t write_to_buffer(struct archive *archive, void *opaque, const void *data, size_t len)
{
	if (buffer_append(opaque, data, len)) {
		archive_set_error(archive, ENOMEM, "out of memory");
		return -1;
	}
	return (la_ssize_t)len;
}

struct packer {
	struct archive *archive;
	struct archive_entry *entry;
	char **dirs;           /* directories already written */
	size_t dir_count;
	struct sm_error *err;
};

static int add_entry(struct packer *packer, const char *path, mode_t mode, dev_t rdev,
		     const void *data, size_t size)
{
	struct archive_entry *entry = packer->entry;

	archive_entry_clear(entry);
	/* newc paths are relative to the archive root. */
	archive_entry_set_pathname(entry, path[0] == '/' ? path + 1 : path);
	archive_entry_set_mode(entry, mode);
	archive_entry_set_uid(entry, 0);
	archive_entry_set_gid(entry, 0);
	archive_entry_set_nlink(entry, S_ISDIR(mode) ? 2 : 1);
	archive_entry_set_rdev(entry, rdev);
	archive_entry_set_size(entry, S_ISREG(mode) ? (la_int64_t)size : 0);
	if (archive_write_header(packer->archive, entry) != ARCHIVE_OK)
		goto err;
	if (S_ISREG(mode) && size && archive_write_data(packer->archive, data, size) != (la_ssize_t)size)
		goto err;
	return 0;
err:
	return sm_error__set(packer->err, EIO, "initramfs: cannot add %s: %s", path,
			     archive_error_string(packer->archive));
}

static int add_directory(struct packer *packer, const char *path)
{
	char **dirs;
	char *copy;

	for (size_t i = 0; i < packer->dir_count; i++) {
		if (strcmp(packer->dirs[i], path) == 0)
			return 0;
	}
	copy = strdup(path);
	dirs = realloc(packer->dirs, (packer->dir_count + 1) * sizeof(*dirs));
	if (!copy || !dirs) {
		free(copy);
		if (dirs)
			packer->dirs = dirs;
		return sm_error__set(packer->err, ENOMEM, "initramfs: out of memory");
	}
	packer->dirs = dirs;
	packer->dirs[packer->dir_count++] = copy;
	return add_entry(packer, path, S_IFDIR | 0755, 0, NULL, 0);
}

/* Add every missing parent directory of the absolute `path`. */
static int add_parents(struct packer *packer, const char *path)
{
	char parent[4096];
	int ret;

	if (strlen(path) >= sizeof(parent))
		return sm_error__set(packer->err, ENAMETOOLONG, "initramfs: path too long: %s", path);
	strcpy(parent, path);
	for (char *slash = strchr(parent + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		ret = add_directory(packer, parent);
		*slash = '/';
		if (ret)
			return ret;
	}
	return 0;
}

static int add_host_file(struct packer *packer, const char *host_path, const char *guest_path,
			 mode_t force_mode)
{
	uint8_t *data = NULL;
	size_t size = 0;
	mode_t mode = 0;
	struct stat st;
	int mapped, ret;

	/* Mapping saves a copy of each file in fresh heap pages; empty files cannot be mapped. */
	mapped = stat(host_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
	if (mapped) {
		ret = host_file__map(NULL, host_path, &data, &size, NULL, packer->err);
		mode = st.st_mode & 07777;
	} else {
		ret = host_file__read(NULL, host_path, &data, &size, &mode, packer->err);
	}
	if (ret)
		return ret;
	ret = add_parents(packer, guest_path);
	if (!ret)
		ret = add_entry(packer, guest_path, S_IFREG | (force_mode ? force_mode : mode), 0, data, size);
	if (mapped)
		munmap(data, size);
	else
		free(data);
	return ret;
}

static int pack(struct packer *packer, const struct initramfs_spec *spec)
{
	static const char *const mount_points[] = { "/dev", "/proc", "/sys", "/tmp", "/run", "/root" };
	uint8_t *run;
	size_t run_size;
	int ret;

	for (size_t i = 0; i < sizeof(mount_points) / sizeof(mount_points[0]); i++) {
		ret = add_directory(packer, mount_points[i]);
		if (ret)
			return ret;
	}
	/* The kernel opens /dev/console for init before anything is mounted. */
	ret = add_entry(packer, "/dev/console", S_IFCHR | 0600, makedev(5, 1), NULL, 0);
	if (ret)
		return ret;

	for (size_t i = 0; i < spec->file_count; i++) {
		ret = add_host_file(packer, spec->files[i].host_path, spec->files[i].guest_path, 0);
		if (ret)
			return ret;
	}
	ret = add_host_file(packer, spec->init_path, "/init", 0755);
	if (ret)
		return ret;

	if (initramfs__encode_run(&spec->run, &run, &run_size))
		return sm_error__set(packer->err, ENOMEM, "initramfs: out of memory");
	ret = add_parents(packer, INITRAMFS_RUN_PATH);
	if (!ret)
		ret = add_entry(packer, INITRAMFS_RUN_PATH, S_IFREG | 0644, 0, run, run_size);
	free(run);
	return ret;
}

/* An upper estimate of the archive's size, so the buffer is allocated once instead of regrown. */
static size_t estimate_size(const struct initramfs_spec *spec)
{
	size_t total = 64 * 1024; /* directories, device node, run file and trailer */
	struct stat st;

	for (size_t i = 0; i < spec->file_count; i++) {
		if (stat(spec->files[i].host_path, &st) == 0)
			total += (size_t)st.st_size + 1024;
	}
	if (stat(spec->init_path, &st) == 0)
		total += (size_t)st.st_size + 1024;
	return total;
}

int initramfs__build(const struct initramfs_spec *spec, uint8_t **data, size_t *size,
		     struct sm_error *err)
{
	struct buffer buf = { 0 };
	struct packer packer = { .err = err };
	int ret;

	buf.capacity = estimate_size(spec);
	buf.data = malloc(buf.capacity);
	if (!buf.data)
		buf.capacity = 0;
	packer.archive = archive_write_new();
	packer.entry = archive_entry_new();
	if (!packer.archive || !packer.entry) {
		ret = sm_error__set(err, ENOMEM, "initramfs: out of memory");
		goto out;
	}
	if (archive_write_set_format_cpio_newc(packer.archive) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(packer.archive, 0) != ARCHIVE_OK ||
	    archive_write_open(packer.archive, &buf, NULL, write_to_buffer, NULL) != ARCHIVE_OK) {
		ret = sm_error__set(err, EIO, "initramfs: cannot start the archive: %s",
				    archive_error_string(packer.archive));
		goto out;
	}
	ret = pack(&packer, spec);
	if (!ret && archive_write_close(packer.archive) != ARCHIVE_OK)
		ret = sm_error__set(err, EIO, "initramfs: cannot finish the archive: %s",
				    archive_error_string(packer.archive));

out:
	if (packer.entry)
		archive_entry_free(packer.entry);
	if (packer.archive)
		archive_write_free(packer.archive);
	for (size_t i = 0; i < packer.dir_count; i++)
		free(packer.dirs[i]);
	free(packer.dirs);
	if (ret) {
		free(buf.data);
		return ret;
	}
	*data = buf.data;
	*size = buf.size;
	return 0;
}
