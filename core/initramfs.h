/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The initramfs the core packs for each boot (newc cpio): the guest init as
 * /init, /dev/console, the files a config names, and /smcore/run, which gives
 * the init the command to run as NUL-terminated KEY, VALUE pairs: "argv" (repeated,
 * in order), "env" (repeated, NAME=VALUE) and "cwd" (at most once).
 */
#ifndef SMCORE_INITRAMFS_H
#define SMCORE_INITRAMFS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define INITRAMFS_RUN_PATH "/smcore/run"

struct initramfs_file {
	const char *host_path;
	const char *guest_path; /* absolute */
};

/* The init's command and root, written to /smcore/run as KEY, VALUE pairs. */
struct initramfs_run {
	char *const *argv;      /* NULL-terminated */
	char *const *env;       /* NULL-terminated NAME=VALUE, or NULL */
	const char *cwd;        /* or NULL */
	const char *root;       /* guest block device of the root image, or NULL to stay in the initramfs */
	const char *root_type;  /* its file system type, such as "squashfs" */
	const char *user;       /* an OCI User value ("name", "uid:gid", ...), or NULL for root */
};

struct initramfs_spec {
	const char *init_path;  /* host path of the static init binary */
	const struct initramfs_file *files;
	size_t file_count;
	struct initramfs_run run;
};

/* Encode the /smcore/run file; 0 or -ENOMEM. The caller frees *data. */
int initramfs__encode_run(const struct initramfs_run *run, uint8_t **data, size_t *size);
/* Pack the archive into a malloc'ed buffer; 0 or -errno with a message naming the file. */
int initramfs__build(const struct initramfs_spec *spec, uint8_t **data, size_t *size,
		     struct sm_error *err);

#endif
