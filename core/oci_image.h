/* SPDX-License-Identifier: Apache-2.0 */
/* Reading of container images: OCI image layouts, oci-archive and docker-archive tarballs. */
#ifndef SMCORE_OCI_IMAGE_H
#define SMCORE_OCI_IMAGE_H

#include <stddef.h>

#include "error.h"

enum oci_image_format {
	OCI_IMAGE_LAYOUT,         /* a directory with oci-layout, index.json and blobs/ */
	OCI_IMAGE_ARCHIVE,        /* the same layout inside a tar file (oci-archive) */
	OCI_IMAGE_DOCKER_ARCHIVE, /* the output of `docker save`: manifest.json and layer tars */
};

/* One image, for the host platform linux/amd64. Every string is owned by the struct. */
struct oci_image {
	enum oci_image_format format;
	/*
	 * Lowercase sha256 hex of the manifest bytes, the cache key of the image.
	 * For docker-archive, which has no OCI manifest, it is the hash of
	 * manifest.json followed by the config file.
	 */
	char manifest_digest[65];
	char **entrypoint;  /* config Entrypoint, NULL-terminated; empty when unset */
	char **cmd;         /* config Cmd, NULL-terminated; empty when unset */
	char **env;         /* config Env as "NAME=value", NULL-terminated; empty when unset */
	char *working_dir;  /* config WorkingDir, "" when unset */
	char *user;         /* config User, "" when unset */
	char **layers;      /* host paths of the layer tarballs, lowest first, NULL-terminated */
	size_t layer_count;
};

/* Return the format name used in messages: "oci", "oci-archive" or "docker-archive". */
const char *oci_image__format_name(enum oci_image_format format);

/*
 * Detect the format of `source`: a directory with oci-layout and index.json, or a
 * tar file with the same (oci-archive) or with manifest.json (docker-archive).
 * Returns 0, -ENOENT when `source` is missing, or -EINVAL for anything else.
 */
int oci_image__detect(const char *source, enum oci_image_format *format, struct sm_error *err);

/*
 * Read the image at `source`: pick the manifest for linux/amd64 (the first match
 * in index.json, following nested indexes), check the manifest and config
 * digests, and read the config and the ordered layer list into `image`. Layers
 * of a tarball source are extracted into `work_dir`, which must exist, as
 * layer-NNN; for a layout directory `work_dir` may be NULL and the layer paths
 * point into its blobs/ directory. Every layer named blobs/sha256/HEX is read
 * once to check its digest.
 * Returns 0, or negative errno with a message naming the file; on error `image`
 * holds nothing to release.
 */
int oci_image__open(const char *source, const char *work_dir, struct oci_image *image,
		    struct sm_error *err);

/*
 * Read only the index, manifest and config of the image at `source` into
 * `image`, as oci_image__open does, without extracting or hashing any layer:
 * a tarball is streamed and its layer blobs skipped. `image->layers` is an
 * empty vector. This is enough to find the manifest digest, the cache key.
 * Returns 0, or negative errno with a message naming the file; on error
 * `image` holds nothing to release.
 */
int oci_image__open_config(const char *source, struct oci_image *image, struct sm_error *err);

/* Free everything `image` owns and zero it. */
void oci_image__release(struct oci_image *image);

#endif
