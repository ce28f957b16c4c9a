/* SPDX-License-Identifier: Apache-2.0 */
/* Paths relative to the directory that contains libsmcore (or the program linking the core). */
#ifndef SMCORE_INSTALL_DIR_H
#define SMCORE_INSTALL_DIR_H

#include <stddef.h>

/* Write "<dir of libsmcore>/<relative>" to `path`; 0 or -errno. */
int install_dir__path(const char *relative, char *path, size_t size);

#endif
