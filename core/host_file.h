/* SPDX-License-Identifier: Apache-2.0 */
/* Reading whole host files (kernels, initrds, initramfs files) with messages that name them. */
#ifndef SMCORE_HOST_FILE_H
#define SMCORE_HOST_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/*
 * Read the regular file at `path` into a malloc'ed buffer the caller frees,
 * and its permission bits into `mode` (may be NULL). 0, or -errno with a
 * message "WHAT PATH: problem" (or "PATH: problem" when `what` is NULL).
 */
int host_file__read(const char *what, const char *path, uint8_t **data, size_t *size,
		    mode_t *mode, struct sm_error *err);
/*
 * Map the non-empty regular file at `path` read-only; the caller unmaps it.
 * With `fd_out`, the file also stays open there for the caller to close.
 * Returns as host_file__read.
 */
int host_file__map(const char *what, const char *path, uint8_t **data, size_t *size,
		   int *fd_out, struct sm_error *err);

#endif
