/* SPDX-License-Identifier: Apache-2.0 */
#include "host_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(struct sm_error *err, int code, const char *what, const char *path, const char *problem)
{
	return sm_error__set(err, code, "%s%s%s: %s", what ? what : "", what ? " " : "", path, problem);
}

/* Open `path` and check that it is a regular file; returns the fd or -errno. */
static int open_regular(const char *what, const char *path, struct stat *st, struct sm_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int code = errno;
	char problem[256];

	if (fd < 0) {
		snprintf(problem, sizeof(problem), "cannot open: %s", strerror(code));
		return fail(err, code, what, path, problem);
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return fail(err, EINVAL, what, path, "not a regular file");
	}
	return fd;
}

int host_file__read(const char *what, const char *path, uint8_t **data, size_t *size,
		    mode_t *mode, struct sm_error *err)
{
	char problem[256];
	size_t done = 0;
	struct stat st;
	int fd;

	fd = open_regular(what, path, &st, err);
	if (fd < 0)
		return fd;
	*data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*data) {
		close(fd);
		return fail(err, ENOMEM, what, path, "out of memory");
	}
	while (done < (size_t)st.st_size) {
		ssize_t got = read(fd, *data + done, (size_t)st.st_size - done);
		int code = got < 0 ? errno : EIO;

		if (got <= 0) {
			free(*data);
			*data = NULL;
			close(fd);
			snprintf(problem, sizeof(problem), "read failed: %s",
				 got == 0 ? "the file shrank while being read" : strerror(code));
			return fail(err, code, what, path, problem);
		}
		done += (size_t)got;
	}
	close(fd);
	*size = done;
	if (mode)
		*mode = st.st_mode & 07777;
	return 0;
}

int host_file__map(const char *what, const char *path, uint8_t **data, size_t *size,
		   int *fd_out, struct sm_error *err)
{
	char problem[256];
	struct stat st;
	void *mapping;
	int fd, code;

	fd = open_regular(what, path, &st, err);
	if (fd < 0)
		return fd;
	if (st.st_size == 0) {
		close(fd);
		return fail(err, EINVAL, what, path, "the file is empty");
	}
	mapping = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	code = errno;
	if (fd_out && mapping != MAP_FAILED)
		*fd_out = fd;
	else
		close(fd);
	if (mapping == MAP_FAILED) {
		snprintf(problem, sizeof(problem), "cannot map: %s", strerror(code));
		return fail(err, code, what, path, problem);
	}
	*data = mapping;
	*size = (size_t)st.st_size;
	return 0;
}
