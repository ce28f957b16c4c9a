/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "install_dir.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int install_dir__path(const char *relative, char *path, size_t size)
{
	char resolved[PATH_MAX];
	Dl_info info;
	char *slash;
	int len;

	if (!dladdr((void *)install_dir__path, &info) || !info.dli_fname)
		return -ENOENT;
	if (!realpath(info.dli_fname, resolved))
		return -errno;
	slash = strrchr(resolved, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';

	len = snprintf(path, size, "%s/%s", resolved, relative);
	if (len < 0 || (size_t)len >= size)
		return -ENAMETOOLONG;
	return 0;
}
