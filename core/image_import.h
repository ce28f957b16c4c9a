/* SPDX-License-Identifier: Apache-2.0 */
/* Import of container images into read-only squashfs root images, with a cache keyed by manifest digest. */
#ifndef SMCORE_IMAGE_IMPORT_H
#define SMCORE_IMAGE_IMPORT_H

#include <stdbool.h>

#include "error.h"
#include "oci_image.h"

/* Exported from libsmcore.so for the smcore command line, which links only the shared library. */
#define IMAGE_IMPORT_API __attribute__((visibility("default")))

/* A root image ready to attach to a guest. Every pointer is owned by the struct. */
struct image_root {
	char *path;              /* host path of the read-only root image */
	const char *fs_type;     /* "squashfs" */
	struct oci_image config; /* manifest_digest, entrypoint, cmd, env, working_dir, user; layers empty */
	bool imported;           /* false when the cache already had the image */
};

/*
 * Return the default image cache: $SMCORE_CACHE_DIR/images when set, else
 * /var/cache/smcore/images when running as root, else
 * $XDG_CACHE_HOME/smcore/images or ~/.cache/smcore/images. The caller frees
 * the result; NULL when out of memory or no home directory is known.
 */
IMAGE_IMPORT_API char *image_import__default_cache_dir(void);

/*
 * Import `source` (OCI layout, oci-archive or docker-archive) into
 * cache_dir/HEX.squashfs, HEX being the manifest digest, unless that file
 * exists; cache_dir is created when missing. The check reads only the
 * image's index, manifest and config. Fills `root`, which the caller
 * releases with image_root__release.
 * Returns 0, or negative errno with a message naming the file and the fix.
 * On error nothing is left in the cache and `root` holds nothing to release.
 */
IMAGE_IMPORT_API int image_import__cached(const char *source, const char *cache_dir,
					  struct image_root *root, struct sm_error *err);

/*
 * Import `source` into the squashfs file `output`: apply the layers in order
 * to a temporary directory next to `output`, run mksquashfs on it and rename
 * the result over `output`. Fills `config` (layers empty) when not NULL.
 * Returns 0, or negative errno with a message naming the file and the fix.
 * On error `output` is unchanged and no temporary file remains.
 */
IMAGE_IMPORT_API int image_import__to_file(const char *source, const char *output,
					   struct oci_image *config, struct sm_error *err);

/*
 * Make imports in the calling thread stop when *flag becomes non-zero: the
 * import kills mksquashfs, removes its temporary files and returns -EINTR.
 * The flag is checked between layers and while mksquashfs runs. NULL turns
 * this off.
 */
IMAGE_IMPORT_API void image_import__set_cancel_flag(const int *flag);

/* Free everything `root` owns and zero it; a zeroed `root` is fine. */
IMAGE_IMPORT_API void image_root__release(struct image_root *root);

#endif
