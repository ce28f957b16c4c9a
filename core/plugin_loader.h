/* SPDX-License-Identifier: Apache-2.0 */
/* Finding, opening and checking plugin shared objects. */
#ifndef SMCORE_PLUGIN_LOADER_H
#define SMCORE_PLUGIN_LOADER_H

#include <stddef.h>
#include <stdio.h>

#include <smcore/plugin.h>

#include "error.h"

struct sm_plugin {
	char *path;
	void *handle;
	/* Copies of the plugin's structs in the core's own sizes, zero-extended. */
	struct smcore_plugin_descriptor desc;
	union {
		struct smcore_accel_ops accel;
		struct smcore_device_ops device;
		struct smcore_codec_ops codec;
		struct smcore_net_ops net;
	} ops;
};

/* Directories searched for plugins, in order. */
struct plugin_search {
	char **dirs;
	size_t count;
};

/*
 * Build the search list: each of `cli_dirs` (colon-separated lists from
 * --plugin-path), then SMCORE_PLUGIN_PATH, then `config_plugin_dir` (may be
 * NULL), then the install directory next to libsmcore. Returns 0 or -ENOMEM.
 */
int plugin_search__init(struct plugin_search *search, char *const *cli_dirs, size_t cli_count,
			const char *config_plugin_dir);
void plugin_search__free(struct plugin_search *search);

/* Open and check the plugin at `path`; 0, or a negative errno with a message naming the file. */
int plugin__open(const char *path, struct sm_plugin **plugin, struct sm_error *err);
/* Find NAME.so of `kind` along `search`; 0, or -ENOENT naming every directory tried. */
int plugin__find(const struct plugin_search *search, const char *name, uint32_t kind,
		 struct sm_plugin **plugin, struct sm_error *err);
void plugin__close(struct sm_plugin *plugin);
/* Print every plugin along `search` with kind, name, version and ABI, or why it was rejected; returns the count found. */
int plugin__list(const struct plugin_search *search, FILE *out);
const char *plugin__kind_name(uint32_t kind);

#endif
