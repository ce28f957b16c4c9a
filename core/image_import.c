/* SPDX-License-Identifier: Apache-2.0 */
/* Turn a container image into a squashfs root image: apply its layers to a directory, then run mksquashfs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image_import.h"
#include "log.h"
#include "oci_layers.h"

/* Bytes from the end of mksquashfs's error output that go into the message. */
#define MKSQUASHFS_OUTPUT_TAIL 600

/* The temporary directory of one import, next to its output so the final rename stays on one file system. */
struct import_work {
	char *dir;
	char *layers;  /* layers extracted from a tarball source */
	char *root;    /* the root file system, built up layer by layer */
	char *image;   /* the squashfs image before the rename */
	char *log;     /* mksquashfs's standard error */
};

/* ---- Files and directories ---- */

/*
 * Remove the tree `name` below `parent_fd` without following symlinks.
 * Directories lacking owner write or search permission, as an image may
 * contain, are opened up first, because without root those bits would stop
 * the removal.
 */
static int remove_tree_at(int parent_fd, const char *name)
{
	struct dirent *entry;
	struct stat st;
	DIR *dir;
	int fd;
	int ret = 0;

	if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent_fd, name, 0) < 0 ? -errno : 0;
	if ((st.st_mode & S_IRWXU) != S_IRWXU)
		fchmodat(parent_fd, name, 0700, 0);

	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return -errno;
	}
	while ((entry = readdir(dir)) != NULL) {
		int child_ret;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		child_ret = remove_tree_at(dirfd(dir), entry->d_name);
		if (ret == 0)
			ret = child_ret;
	}
	closedir(dir);
	if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* Create `path` and its missing parents with mode 0755. */
static int make_directories(const char *path, struct sm_error *err)
{
	char *copy = strdup(path);
	int ret = 0;

	if (copy == NULL)
		return sm_error__set(err, ENOMEM, "%s: out of memory", path);
	for (char *slash = copy + 1; ret == 0; slash++) {
		bool last = *slash == '\0';

		if (*slash != '/' && !last)
			continue;
		*slash = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			ret = sm_error__set(err, errno, "%s: cannot create the image cache directory: %s",
					    copy, strerror(errno));
		if (last)
			break;
		*slash = '/';
	}
	free(copy);
	return ret;
}

/* Return a copy of the directory part of `path`, "." when it has none. */
static char *parent_directory(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static void work__release(struct import_work *work)
{
	if (work->dir != NULL) {
		int ret = remove_tree_at(AT_FDCWD, work->dir);

		if (ret < 0)
			log_warning("image", "cannot remove the temporary directory %s: %s", work->dir,
				    strerror(-ret));
	}
	free(work->dir);
	free(work->layers);
	free(work->root);
	free(work->image);
	free(work->log);
	memset(work, 0, sizeof(*work));
}

/* Create the temporary directory of an import in the directory that will hold `output`. */
static int work__create(struct import_work *work, const char *output, struct sm_error *err)
{
	char *directory = parent_directory(output);
	int ret = 0;

	memset(work, 0, sizeof(*work));
	if (directory == NULL || asprintf(&work->dir, "%s/.smcore-import-XXXXXX", directory) < 0) {
		work->dir = NULL;
		free(directory);
		return sm_error__set(err, ENOMEM, "%s: out of memory", output);
	}
	if (mkdtemp(work->dir) == NULL) {
		ret = sm_error__set(err, errno,
				    "%s: cannot create a temporary directory in %s: %s; the output directory must exist and be writable",
				    output, directory, strerror(errno));
		free(work->dir);
		work->dir = NULL;
		free(directory);
		return ret;
	}
	free(directory);

	if (asprintf(&work->layers, "%s/layers", work->dir) < 0)
		work->layers = NULL;
	if (asprintf(&work->root, "%s/root", work->dir) < 0)
		work->root = NULL;
	if (asprintf(&work->image, "%s/image.squashfs", work->dir) < 0)
		work->image = NULL;
	if (asprintf(&work->log, "%s/mksquashfs.log", work->dir) < 0)
		work->log = NULL;
	if (!work->layers || !work->root || !work->image || !work->log)
		ret = sm_error__set(err, ENOMEM, "%s: out of memory", output);
	else if (mkdir(work->layers, 0700) < 0 || mkdir(work->root, 0755) < 0 ||
		 chmod(work->root, 0755) < 0)
		ret = sm_error__set(err, errno, "%s: cannot create a directory: %s", work->dir,
				    strerror(errno));
	if (ret < 0)
		work__release(work);
	return ret;
}

/* ---- Layers ---- */

static __thread const int *cancel_flag;

void image_import__set_cancel_flag(const int *flag)
{
	cancel_flag = flag;
}

static bool cancelled(void)
{
	return cancel_flag && __atomic_load_n(cancel_flag, __ATOMIC_ACQUIRE);
}

static int apply_layers(const char *source, const struct oci_image *image,
			const struct import_work *work, struct sm_error *err)
{
	bool progress = isatty(STDERR_FILENO);

	for (size_t i = 0; i < image->layer_count; i++) {
		char name[48];
		struct stat st;
		int ret;

		if (cancelled())
			return sm_error__set(err, EINTR, "%s: the import was interrupted", source);
		snprintf(name, sizeof(name), "%zu/%zu", i + 1, image->layer_count);
		if (progress && stat(image->layers[i], &st) == 0)
			fprintf(stderr, "smcore: image: importing layer %s (%.1f MiB)\n", name,
				(double)st.st_size / (1024 * 1024));
		ret = oci_layers__apply(image->layers[i], work->root, name, err);
		if (ret < 0)
			return sm_error__prefix(err, "%s", source);

		/* A layer extracted from a tarball is a copy; dropping it early halves the peak disk use. */
		if (image->format != OCI_IMAGE_LAYOUT)
			unlink(image->layers[i]);
	}
	return 0;
}

/* ---- mksquashfs ---- */

/* Copy the end of the file at `path` into `tail` as one line. */
static void read_tail(const char *path, char *tail, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t got = 0;
	char *start;

	tail[0] = '\0';
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)(size - 1))
		lseek(fd, end - (off_t)(size - 1), SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	got = read(fd, tail, size - 1);
	close(fd);
	tail[got > 0 ? got : 0] = '\0';

	for (char *p = tail; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	for (size_t length = strlen(tail); length > 0 && tail[length - 1] == ' '; length--)
		tail[length - 1] = '\0';
	start = tail + strspn(tail, " ");
	memmove(tail, start, strlen(start) + 1);
}

/* Start mksquashfs; its exec errno comes back over a close-on-exec pipe. Returns the pid or -errno. */
static pid_t spawn_mksquashfs(const char *const *argv, int log_fd, bool progress, int *exec_errno)
{
	int pipe_fds[2];
	pid_t pid;
	ssize_t got;

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int fork_errno = errno;

		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return -fork_errno;
	}
	if (pid == 0) {
		int child_errno;

		/* The progress bar goes to the terminal on standard error, never to our standard output. */
		if (dup2(progress ? STDERR_FILENO : log_fd, STDOUT_FILENO) < 0 ||
		    dup2(log_fd, STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		child_errno = errno;
		if (write(pipe_fds[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}

	close(pipe_fds[1]);
	*exec_errno = 0;
	do
		got = read(pipe_fds[0], exec_errno, sizeof(*exec_errno));
	while (got < 0 && errno == EINTR);
	close(pipe_fds[0]);
	if (got != (ssize_t)sizeof(*exec_errno))
		*exec_errno = 0;
	return pid;
}

/* Run mksquashfs on the root directory, writing the image to work->image. */
static int run_mksquashfs(const struct import_work *work, struct sm_error *err)
{
	bool progress = isatty(STDERR_FILENO);
	const char *argv[12];
	size_t argc = 0;
	char tail[MKSQUASHFS_OUTPUT_TAIL];
	int log_fd, status, exec_errno;
	pid_t pid;

	/* The guest kernel has squashfs with xz, lz4 and zstd, but not zlib, the mksquashfs default. */
	argv[argc++] = "mksquashfs";
	argv[argc++] = work->root;
	argv[argc++] = work->image;
	argv[argc++] = "-comp";
	argv[argc++] = "zstd";
	argv[argc++] = "-noappend";
	argv[argc++] = "-quiet";
	if (geteuid() != 0)
		argv[argc++] = "-all-root";
	if (!progress)
		argv[argc++] = "-no-progress";
	argv[argc] = NULL;

	log_fd = open(work->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (log_fd < 0)
		return sm_error__set(err, errno, "%s: cannot create: %s", work->log, strerror(errno));
	pid = spawn_mksquashfs(argv, log_fd, progress, &exec_errno);
	close(log_fd);
	if (pid < 0)
		return sm_error__set(err, (int)-pid, "cannot start mksquashfs: %s", strerror((int)-pid));
	/* Poll, so that an interrupted import stops mksquashfs instead of leaving it behind. */
	for (;;) {
		struct timespec pause = { 0, 20 * 1000 * 1000 };
		pid_t done = waitpid(pid, &status, WNOHANG);

		if (done == pid)
			break;
		if (done < 0 && errno != EINTR)
			return sm_error__set(err, errno, "waiting for mksquashfs failed: %s", strerror(errno));
		if (cancelled()) {
			kill(pid, SIGTERM);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return sm_error__set(err, EINTR, "the import was interrupted");
		}
		nanosleep(&pause, NULL);
	}

	if (exec_errno == ENOENT)
		return sm_error__set(err, ENOENT, "mksquashfs not found in PATH; install squashfs-tools");
	if (exec_errno != 0)
		return sm_error__set(err, exec_errno, "cannot run mksquashfs: %s", strerror(exec_errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	read_tail(work->log, tail, sizeof(tail));
	if (WIFSIGNALED(status))
		return sm_error__set(err, EIO, "mksquashfs was killed by signal %d: %s",
				     WTERMSIG(status), tail[0] ? tail : "no error output");
	return sm_error__set(err, EIO, "mksquashfs failed with exit status %d: %s",
			     WEXITSTATUS(status), tail[0] ? tail : "no error output");
}

/* Flush the finished image to disk and rename it to `output`. */
static int publish_image(const struct import_work *work, const char *output, struct sm_error *err)
{
	int fd = open(work->image, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return sm_error__set(err, errno, "%s: cannot open: %s", work->image, strerror(errno));
	if (fsync(fd) < 0) {
		int sync_errno = errno;

		close(fd);
		return sm_error__set(err, sync_errno, "%s: fsync failed: %s", work->image,
				     strerror(sync_errno));
	}
	close(fd);
	if (rename(work->image, output) < 0)
		return sm_error__set(err, errno, "%s: cannot replace: %s", output, strerror(errno));
	return 0;
}

/* ---- Import ---- */

/* Move the config of `image` to `config`, leaving its layer list empty. */
static int keep_config(struct oci_image *image, struct oci_image *config, struct sm_error *err)
{
	char **empty = calloc(1, sizeof(*empty));

	if (empty == NULL)
		return sm_error__set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < image->layer_count; i++)
		free(image->layers[i]);
	free(image->layers);
	image->layers = empty;
	image->layer_count = 0;
	*config = *image;
	memset(image, 0, sizeof(*image));
	return 0;
}

/*
 * Import `source` to `output`. When `expected_digest` is not NULL, the image
 * read must still have that manifest digest, so a source replaced since the
 * caller looked at it is not stored under the old name.
 */
static int import_image(const char *source, const char *output, const char *expected_digest,
			struct oci_image *config, struct sm_error *err)
{
	struct oci_image image;
	struct import_work work;
	int ret;

	ret = oci_image__detect(source, &image.format, err);
	if (ret < 0)
		return ret;
	ret = work__create(&work, output, err);
	if (ret < 0)
		return ret;
	ret = oci_image__open(source, work.layers, &image, err);
	if (ret < 0)
		goto out_work;
	if (expected_digest != NULL && strcmp(image.manifest_digest, expected_digest) != 0) {
		ret = sm_error__set(err, ESTALE,
				    "%s: the image changed during the import (manifest sha256:%s, expected sha256:%s); run the import again",
				    source, image.manifest_digest, expected_digest);
		goto out_image;
	}

	if (geteuid() != 0)
		log_warning("image", "not running as root, so every file in %s is owned by root", output);
	ret = apply_layers(source, &image, &work, err);
	if (ret == 0)
		ret = run_mksquashfs(&work, err);
	if (ret == 0)
		ret = publish_image(&work, output, err);
	if (ret == 0 && config != NULL)
		ret = keep_config(&image, config, err);
	if (ret == 0)
		log_info("image", "imported %s (manifest sha256:%s) to %s", source,
			 config ? config->manifest_digest : image.manifest_digest, output);
out_image:
	oci_image__release(&image);
out_work:
	work__release(&work);
	return ret;
}

char *image_import__default_cache_dir(void)
{
	const char *base = getenv("SMCORE_CACHE_DIR");
	char *path;
	int length;

	if (base != NULL && base[0] != '\0')
		length = asprintf(&path, "%s/images", base);
	else if (geteuid() == 0)
		return strdup("/var/cache/smcore/images");
	else if ((base = getenv("XDG_CACHE_HOME")) != NULL && base[0] == '/')
		length = asprintf(&path, "%s/smcore/images", base);
	else {
		const char *home = getenv("HOME");
		struct passwd *entry;

		if (home == NULL || home[0] == '\0') {
			entry = getpwuid(geteuid());
			home = entry ? entry->pw_dir : NULL;
		}
		if (home == NULL)
			return NULL;
		length = asprintf(&path, "%s/.cache/smcore/images", home);
	}
	return length < 0 ? NULL : path;
}

int image_import__cached(const char *source, const char *cache_dir, struct image_root *root,
			 struct sm_error *err)
{
	struct stat st;
	int ret;

	memset(root, 0, sizeof(*root));
	ret = oci_image__open_config(source, &root->config, err);
	if (ret < 0)
		return ret;
	if (asprintf(&root->path, "%s/%s.squashfs", cache_dir, root->config.manifest_digest) < 0) {
		root->path = NULL;
		ret = sm_error__set(err, ENOMEM, "%s: out of memory", source);
		goto fail;
	}
	root->fs_type = "squashfs";

	if (stat(root->path, &st) == 0 && S_ISREG(st.st_mode)) {
		log_info("image", "%s: using the cached %s", source, root->path);
		return 0;
	}
	ret = make_directories(cache_dir, err);
	if (ret == 0)
		ret = import_image(source, root->path, root->config.manifest_digest, NULL, err);
	if (ret < 0)
		goto fail;
	root->imported = true;
	return 0;

fail:
	image_root__release(root);
	return ret;
}

int image_import__to_file(const char *source, const char *output, struct oci_image *config,
			  struct sm_error *err)
{
	struct stat source_st, output_st;

	if (config != NULL)
		memset(config, 0, sizeof(*config));
	/* Renaming the result over the source would destroy the image being read. */
	if (stat(source, &source_st) == 0 && stat(output, &output_st) == 0 &&
	    source_st.st_dev == output_st.st_dev && source_st.st_ino == output_st.st_ino)
		return sm_error__set(err, EINVAL, "%s: the output is the image itself; choose another output file",
				     output);
	return import_image(source, output, NULL, config, err);
}

void image_root__release(struct image_root *root)
{
	free(root->path);
	oci_image__release(&root->config);
	memset(root, 0, sizeof(*root));
}
