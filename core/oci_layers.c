/* SPDX-License-Identifier: Apache-2.0 */
/* Apply one image layer tarball to a root directory, the way the OCI image spec describes. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "oci_layers.h"

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_WHITEOUT ".wh..wh..opq"
#define MAX_COMPONENTS 512

/* A layer entry's path, split into checked components relative to the root. */
struct entry_path {
	char buffer[PATH_MAX];
	char *components[MAX_COMPONENTS];
	size_t count;
};

struct directory_time {
	char *path;
	struct timespec times[2];
};

struct layer_apply {
	const char *layer_name;
	int root_fd;
	bool as_root;
	struct archive_entry *entry;
	struct directory_time *directory_times;
	size_t directory_time_count;
	size_t directory_time_capacity;
	struct sm_error *err;
};

/* Shorten a long entry name to its start and end, so the reason after it fits in the message. */
static const char *short_name(const char *pathname, char *buf, size_t size)
{
	size_t len = strlen(pathname);

	if (len < 200 || size < 200)
		return pathname;
	snprintf(buf, size, "%.90s...%s (%zu bytes)", pathname, pathname + len - 90, len);
	return buf;
}

static int entry_error(struct layer_apply *apply, const char *pathname, int code, const char *problem)
{
	char name[256];

	return sm_error__set(apply->err, code, "layer %s: entry %s: %s", apply->layer_name,
			     short_name(pathname, name, sizeof(name)), problem);
}

static int entry_errno(struct layer_apply *apply, const char *pathname, int code, const char *call)
{
	char name[256];

	return sm_error__set(apply->err, code, "layer %s: entry %s: %s failed: %s", apply->layer_name,
			     short_name(pathname, name, sizeof(name)), call, strerror(code));
}

/* Split `name` into components; rejects absolute paths and ".." components. */
static int split_path(struct layer_apply *apply, const char *name, struct entry_path *path)
{
	char *cursor;
	char *component;

	if (name[0] == '/')
		return entry_error(apply, name, EPERM, "absolute path rejected");
	if (strlen(name) >= sizeof(path->buffer))
		return entry_error(apply, name, ENAMETOOLONG, "path too long");
	strcpy(path->buffer, name);

	path->count = 0;
	cursor = path->buffer;
	while ((component = strsep(&cursor, "/")) != NULL) {
		if (component[0] == '\0' || strcmp(component, ".") == 0)
			continue;
		if (strcmp(component, "..") == 0)
			return entry_error(apply, name, EPERM, "\"..\" component rejected");
		if (path->count == MAX_COMPONENTS)
			return entry_error(apply, name, ENAMETOOLONG, "too many path components");
		path->components[path->count++] = component;
	}
	return 0;
}

/*
 * Open the directory holding the last of `path`'s components, walking from the
 * root with O_NOFOLLOW so that no symlink is followed. Missing directories are
 * created with mode 0755 when `create` is set. Returns the fd or negative errno
 * (-ENOENT without a message when `create` is unset and a directory is missing).
 */
static int open_parent(struct layer_apply *apply, const char *name, const struct entry_path *path,
		       bool create)
{
	int fd = dup(apply->root_fd);

	if (fd < 0)
		return entry_errno(apply, name, errno, "dup");
	for (size_t i = 0; i + 1 < path->count; i++) {
		const char *component = path->components[i];
		int next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, component, 0755) < 0 && errno != EEXIST) {
				int code = errno;

				close(fd);
				return entry_errno(apply, name, code, "mkdirat");
			}
			next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int code = errno;
			struct stat st;

			/* Linux reports a symlink opened with O_DIRECTORY | O_NOFOLLOW as ENOTDIR. */
			if (code == ENOTDIR && fstatat(fd, component, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				code = ELOOP;
			close(fd);
			if (code == ENOENT && !create)
				return -ENOENT;
			if (code == ELOOP)
				return entry_error(apply, name, ELOOP,
						   "path passes through a symlink, rejected");
			if (code == ENOTDIR)
				return entry_error(apply, name, ENOTDIR,
						   "a path component is not a directory");
			return entry_errno(apply, name, code, "openat");
		}
		close(fd);
		fd = next;
	}
	return fd;
}

/* Remove `name` in `dir_fd` and, for a directory, everything below it; a missing name is fine. */
static int remove_tree(int dir_fd, const char *name)
{
	struct stat st;
	int fd;
	DIR *dir;
	struct dirent *child;
	int ret = 0;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (dir == NULL) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (ret == 0 && (child = readdir(dir)) != NULL) {
		if (strcmp(child->d_name, ".") == 0 || strcmp(child->d_name, "..") == 0)
			continue;
		ret = remove_tree(dirfd(dir), child->d_name);
	}
	closedir(dir);
	if (ret == 0 && unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

/* Remove everything inside the directory open as `fd`. */
static int empty_directory(int fd)
{
	int copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;
	struct dirent *child;
	int ret = 0;

	if (copy < 0)
		return -errno;
	dir = fdopendir(copy);
	if (dir == NULL) {
		ret = -errno;
		close(copy);
		return ret;
	}
	while (ret == 0 && (child = readdir(dir)) != NULL) {
		if (strcmp(child->d_name, ".") == 0 || strcmp(child->d_name, "..") == 0)
			continue;
		ret = remove_tree(fd, child->d_name);
	}
	closedir(dir);
	return ret;
}

static bool is_whiteout(const struct entry_path *path)
{
	return path->count > 0 &&
	       strncmp(path->components[path->count - 1], WHITEOUT_PREFIX,
		       strlen(WHITEOUT_PREFIX)) == 0;
}

/* Delete what a `.wh.NAME` or `.wh..wh..opq` entry hides from the lower layers. */
static int apply_whiteout(struct layer_apply *apply, const char *name, const struct entry_path *path)
{
	const char *base = path->components[path->count - 1];
	const char *target = base + strlen(WHITEOUT_PREFIX);
	bool opaque = strcmp(base, OPAQUE_WHITEOUT) == 0;
	int parent;
	int ret;

	if (!opaque && (target[0] == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0))
		return entry_error(apply, name, EINVAL, "invalid whiteout name");

	parent = open_parent(apply, name, path, false);
	if (parent == -ENOENT)
		return 0;
	if (parent < 0)
		return parent;
	ret = opaque ? empty_directory(parent) : remove_tree(parent, target);
	close(parent);
	if (ret < 0)
		return entry_errno(apply, name, -ret, opaque ? "emptying the opaque directory" :
							       "removing the whiteout target");
	return 0;
}

static int set_xattrs(struct layer_apply *apply, const char *name, int fd)
{
	const char *key;
	const void *value;
	size_t size;

	archive_entry_xattr_reset(apply->entry);
	while (archive_entry_xattr_next(apply->entry, &key, &value, &size) == ARCHIVE_OK) {
		if (fsetxattr(fd, key, value, size, 0) == 0)
			continue;
		if (errno == ENOTSUP || errno == EPERM) {
			log_warning("oci", "layer %s: entry %s: xattr %s not stored: %s",
				    apply->layer_name, name, key, strerror(errno));
			continue;
		}
		return entry_errno(apply, name, errno, "fsetxattr");
	}
	return 0;
}

static void entry_times(struct archive_entry *entry, struct timespec times[2])
{
	times[1].tv_sec = archive_entry_mtime(entry);
	times[1].tv_nsec = archive_entry_mtime_nsec(entry);
	if (archive_entry_atime_is_set(entry)) {
		times[0].tv_sec = archive_entry_atime(entry);
		times[0].tv_nsec = archive_entry_atime_nsec(entry);
	} else {
		times[0] = times[1];
	}
}

/* Set owner, mode, xattrs and times on an entry open as `fd` (a file or directory). */
static int set_metadata_fd(struct layer_apply *apply, const char *name, int fd, bool set_times)
{
	struct archive_entry *entry = apply->entry;
	struct timespec times[2];
	int ret;

	/* The owner goes first because chown clears the set-user-ID and set-group-ID bits. */
	if (apply->as_root && fchown(fd, archive_entry_uid(entry), archive_entry_gid(entry)) < 0)
		return entry_errno(apply, name, errno, "fchown");
	if (fchmod(fd, archive_entry_perm(entry) & 07777) < 0)
		return entry_errno(apply, name, errno, "fchmod");
	ret = set_xattrs(apply, name, fd);
	if (ret < 0)
		return ret;
	if (!set_times)
		return 0;
	entry_times(entry, times);
	if (futimens(fd, times) < 0)
		return entry_errno(apply, name, errno, "futimens");
	return 0;
}

/* Set owner, mode and times on a symlink or special file, which cannot be opened safely. */
static int set_metadata_at(struct layer_apply *apply, const char *name, int parent,
			   const char *base, bool is_symlink)
{
	struct archive_entry *entry = apply->entry;
	struct timespec times[2];

	if (apply->as_root && fchownat(parent, base, archive_entry_uid(entry),
				       archive_entry_gid(entry), AT_SYMLINK_NOFOLLOW) < 0)
		return entry_errno(apply, name, errno, "fchownat");
	/* The node was just created by mknodat, so fchmodat cannot follow a symlink here. */
	if (!is_symlink && fchmodat(parent, base, archive_entry_perm(entry) & 07777, 0) < 0)
		return entry_errno(apply, name, errno, "fchmodat");
	/* NOTE: xattrs of symlinks and special files are not applied. */
	entry_times(entry, times);
	if (utimensat(parent, base, times, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_errno(apply, name, errno, "utimensat");
	return 0;
}

static int write_file_data(struct archive *archive, struct layer_apply *apply, const char *name,
			   int fd)
{
	const void *block;
	size_t size;
	la_int64_t offset;
	int status;

	while ((status = archive_read_data_block(archive, &block, &size, &offset)) == ARCHIVE_OK) {
		const char *data = block;

		while (size > 0) {
			ssize_t written = pwrite(fd, data, size, offset);

			if (written < 0) {
				if (errno == EINTR)
					continue;
				return entry_errno(apply, name, errno, "pwrite");
			}
			data += written;
			size -= (size_t)written;
			offset += written;
		}
	}
	if (status != ARCHIVE_EOF)
		return sm_error__set(apply->err, EIO, "layer %s: entry %s: reading data failed: %s",
				     apply->layer_name, name, archive_error_string(archive));
	/* A sparse file may end in a hole that no data block covers. */
	if (ftruncate(fd, archive_entry_size(apply->entry)) < 0)
		return entry_errno(apply, name, errno, "ftruncate");
	return 0;
}

static int create_file(struct archive *archive, struct layer_apply *apply, const char *name,
		       int parent, const char *base)
{
	int fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0)
		return entry_errno(apply, name, errno, "openat");
	ret = write_file_data(archive, apply, name, fd);
	if (ret == 0)
		ret = set_metadata_fd(apply, name, fd, true);
	close(fd);
	return ret;
}

static int remember_directory_time(struct layer_apply *apply, const char *name)
{
	struct directory_time *time;

	if (apply->directory_time_count == apply->directory_time_capacity) {
		size_t capacity = apply->directory_time_capacity ? apply->directory_time_capacity * 2 : 64;
		struct directory_time *grown =
			realloc(apply->directory_times, capacity * sizeof(*grown));

		if (grown == NULL)
			return entry_errno(apply, name, ENOMEM, "realloc");
		apply->directory_times = grown;
		apply->directory_time_capacity = capacity;
	}
	time = &apply->directory_times[apply->directory_time_count];
	time->path = strdup(name);
	if (time->path == NULL)
		return entry_errno(apply, name, ENOMEM, "strdup");
	entry_times(apply->entry, time->times);
	apply->directory_time_count++;
	return 0;
}

static int create_directory(struct layer_apply *apply, const char *name, int parent,
			    const char *base)
{
	struct stat st;
	int fd;
	int ret;

	if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		ret = remove_tree(parent, base);
		if (ret < 0)
			return entry_errno(apply, name, -ret, "replacing a non-directory");
	}
	if (mkdirat(parent, base, 0700) < 0 && errno != EEXIST)
		return entry_errno(apply, name, errno, "mkdirat");
	fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_errno(apply, name, errno, "openat");
	ret = set_metadata_fd(apply, name, fd, false);
	close(fd);
	if (ret < 0)
		return ret;
	/* Later entries change a directory's mtime, so it is set once the layer is done. */
	return remember_directory_time(apply, name);
}

static int create_hard_link(struct layer_apply *apply, const char *name, int parent,
			    const char *base, const char *target_name)
{
	struct entry_path target;
	struct stat st;
	int target_parent;
	const char *target_base;
	int ret;

	ret = split_path(apply, target_name, &target);
	if (ret < 0)
		return sm_error__prefix(apply->err, "hard link target of %s", name);
	if (target.count == 0)
		return entry_error(apply, name, EPERM, "hard link to the root directory rejected");
	target_parent = open_parent(apply, target_name, &target, false);
	if (target_parent == -ENOENT)
		return entry_error(apply, name, ENOENT, "hard link target not found");
	if (target_parent < 0)
		return sm_error__prefix(apply->err, "hard link target of %s", name);

	target_base = target.components[target.count - 1];
	ret = 0;
	if (fstatat(target_parent, target_base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		ret = entry_errno(apply, name, errno, "finding the hard link target");
	else if (S_ISDIR(st.st_mode))
		ret = entry_error(apply, name, EPERM, "hard link to a directory rejected");
	else if (linkat(target_parent, target_base, parent, base, 0) < 0)
		ret = entry_errno(apply, name, errno, "linkat");
	close(target_parent);
	return ret;
}

static int create_special(struct layer_apply *apply, const char *name, int parent,
			  const char *base, mode_t type)
{
	struct archive_entry *entry = apply->entry;
	dev_t device = makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));

	if (mknodat(parent, base, type | 0600, type == S_IFIFO ? 0 : device) < 0)
		return entry_errno(apply, name, errno, "mknodat");
	return set_metadata_at(apply, name, parent, base, false);
}

/* Create one non-whiteout entry below its already opened parent directory. */
static int create_entry(struct archive *archive, struct layer_apply *apply, const char *name,
			int parent, const char *base)
{
	struct archive_entry *entry = apply->entry;
	const char *hard_link = archive_entry_hardlink(entry);
	mode_t type = archive_entry_filetype(entry);
	int ret;

	if (type == AE_IFDIR && hard_link == NULL)
		return create_directory(apply, name, parent, base);

	ret = remove_tree(parent, base);
	if (ret < 0)
		return entry_errno(apply, name, -ret, "removing the lower-layer entry");
	if (hard_link != NULL)
		return create_hard_link(apply, name, parent, base, hard_link);

	switch (type) {
	case AE_IFREG:
		return create_file(archive, apply, name, parent, base);
	case AE_IFLNK:
		if (symlinkat(archive_entry_symlink(entry), parent, base) < 0)
			return entry_errno(apply, name, errno, "symlinkat");
		return set_metadata_at(apply, name, parent, base, true);
	case AE_IFCHR:
		return create_special(apply, name, parent, base, S_IFCHR);
	case AE_IFBLK:
		return create_special(apply, name, parent, base, S_IFBLK);
	case AE_IFIFO:
		return create_special(apply, name, parent, base, S_IFIFO);
	default:
		log_warning("oci", "layer %s: entry %s: file type 0%o skipped", apply->layer_name, name,
			    (unsigned int)type);
		return 0;
	}
}

static int apply_entry(struct archive *archive, struct layer_apply *apply, bool whiteouts)
{
	const char *name = archive_entry_pathname(apply->entry);
	struct entry_path path;
	int parent;
	int ret;

	if (name == NULL)
		return sm_error__set(apply->err, EINVAL, "layer %s: entry without a readable path",
				     apply->layer_name);
	ret = split_path(apply, name, &path);
	if (ret < 0)
		return ret;
	/* NOTE: an entry for the root directory itself ("./") is skipped, so root_dir keeps its metadata. */
	if (path.count == 0 || is_whiteout(&path) != whiteouts)
		return 0;
	if (whiteouts)
		return apply_whiteout(apply, name, &path);

	parent = open_parent(apply, name, &path, true);
	if (parent < 0)
		return parent;
	ret = create_entry(archive, apply, name, parent, path.components[path.count - 1]);
	close(parent);
	return ret;
}

/* Read the layer once, applying only whiteouts or only the other entries. */
static int apply_pass(struct layer_apply *apply, const char *layer_path, bool whiteouts)
{
	struct archive *archive = archive_read_new();
	int status;
	int ret = 0;

	if (archive == NULL)
		return sm_error__set(apply->err, ENOMEM, "layer %s: out of memory", apply->layer_name);
	archive_read_support_filter_all(archive);
	archive_read_support_format_tar(archive);
	archive_read_support_format_empty(archive);
	if (archive_read_open_filename(archive, layer_path, 64 * 1024) != ARCHIVE_OK) {
		ret = sm_error__set(apply->err, EIO, "layer %s: cannot open %s: %s", apply->layer_name,
				    layer_path, archive_error_string(archive));
		goto out;
	}
	while ((status = archive_read_next_header(archive, &apply->entry)) == ARCHIVE_OK) {
		ret = apply_entry(archive, apply, whiteouts);
		if (ret < 0)
			goto out;
	}
	if (status != ARCHIVE_EOF)
		ret = sm_error__set(apply->err, EIO, "layer %s: invalid tar archive %s: %s",
				    apply->layer_name, layer_path, archive_error_string(archive));
out:
	archive_read_free(archive);
	return ret;
}

static int apply_directory_times(struct layer_apply *apply)
{
	/* Children come after their parents in the list, so walk it backwards. */
	for (size_t i = apply->directory_time_count; i-- > 0;) {
		struct directory_time *time = &apply->directory_times[i];
		struct entry_path path;
		int parent;
		int ret;

		if (split_path(apply, time->path, &path) < 0)
			return -apply->err->code;
		parent = open_parent(apply, time->path, &path, false);
		if (parent == -ENOENT)
			continue;
		if (parent < 0)
			return parent;
		ret = utimensat(parent, path.components[path.count - 1], time->times,
				AT_SYMLINK_NOFOLLOW);
		close(parent);
		if (ret < 0 && errno != ENOENT)
			return entry_errno(apply, time->path, errno, "utimensat");
	}
	return 0;
}

int oci_layers__apply(const char *layer_path, const char *root_dir, const char *layer_name,
		      struct sm_error *err)
{
	struct layer_apply apply = {
		.layer_name = layer_name,
		.as_root = geteuid() == 0,
		.err = err,
	};
	int ret;

	apply.root_fd = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (apply.root_fd < 0)
		return sm_error__set(err, errno, "layer %s: cannot open root directory %s: %s",
				     layer_name, root_dir, strerror(errno));

	/* Whiteouts hide lower-layer content only, so they go before this layer's own entries. */
	ret = apply_pass(&apply, layer_path, true);
	if (ret == 0)
		ret = apply_pass(&apply, layer_path, false);
	if (ret == 0)
		ret = apply_directory_times(&apply);

	for (size_t i = 0; i < apply.directory_time_count; i++)
		free(apply.directory_times[i].path);
	free(apply.directory_times);
	close(apply.root_fd);
	return ret;
}
