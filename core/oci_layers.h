/* SPDX-License-Identifier: Apache-2.0 */
/* Application of OCI and Docker image layers onto a host directory. */
#ifndef SMCORE_OCI_LAYERS_H
#define SMCORE_OCI_LAYERS_H

#include "error.h"

/*
 * Apply the layer tarball at `layer_path` (uncompressed, gzip or zstd) to the
 * directory `root_dir`, which contains the lower layers already applied.
 * Whiteouts are handled first: `.wh.NAME` deletes NAME and `.wh..wh..opq`
 * empties its directory. Then regular files, directories, symlinks, hard links,
 * device nodes and FIFOs are created with their mode, owner, mtime and xattrs.
 * Every path is resolved one component at a time with O_NOFOLLOW under
 * root_dir, so an entry that is absolute, contains "..", passes through a
 * symlink or hard-links to a target outside root_dir is rejected before
 * anything is written for it. `layer_name` names the layer in messages.
 * Owners are set only when running as root; device nodes need root.
 * Returns 0, or negative errno with a message naming the layer and the entry.
 * Entries applied before a failing entry stay in root_dir.
 */
int oci_layers__apply(const char *layer_path, const char *root_dir, const char *layer_name,
		      struct sm_error *err);

#endif
