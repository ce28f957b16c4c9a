/* SPDX-License-Identifier: Apache-2.0 */
/* The plugin search path and the `smcore plugins` listing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "install_dir.h"
#include "plugin_loader.h"

static int add_dir(struct plugin_search *search, const char *dir, size_t len)
{
	char **dirs;
	char *copy;

	if (len == 0)
		return 0;
	copy = strndup(dir, len);
	if (!copy)
		return -ENOMEM;
	dirs = realloc(search->dirs, (search->count + 1) * sizeof(*dirs));
	if (!dirs) {
		free(copy);
		return -ENOMEM;
	}
	dirs[search->count++] = copy;
	search->dirs = dirs;
	return 0;
}

/* Add each entry of a colon-separated list. */
static int add_path_list(struct plugin_search *search, const char *list)
{
	const char *start = list;
	int ret;

	while (start) {
		const char *colon = strchr(start, ':');
		size_t len = colon ? (size_t)(colon - start) : strlen(start);

		ret = add_dir(search, start, len);
		if (ret)
			return ret;
		start = colon ? colon + 1 : NULL;
	}
	return 0;
}

int plugin_search__init(struct plugin_search *search, char *const *cli_dirs, size_t cli_count,
			const char *config_plugin_dir)
{
	char install[PATH_MAX];
	const char *env;
	int ret = 0;

	memset(search, 0, sizeof(*search));
	for (size_t i = 0; i < cli_count && !ret; i++)
		ret = add_path_list(search, cli_dirs[i]);
	env = getenv("SMCORE_PLUGIN_PATH");
	if (env && !ret)
		ret = add_path_list(search, env);
	if (config_plugin_dir && !ret)
		ret = add_dir(search, config_plugin_dir, strlen(config_plugin_dir));
	if (!ret && install_dir__path(SMCORE_PLUGIN_RELDIR, install, sizeof(install)) == 0)
		ret = add_dir(search, install, strlen(install));
	if (ret)
		plugin_search__free(search);
	return ret;
}

void plugin_search__free(struct plugin_search *search)
{
	for (size_t i = 0; i < search->count; i++)
		free(search->dirs[i]);
	free(search->dirs);
	memset(search, 0, sizeof(*search));
}

int plugin__find(const struct plugin_search *search, const char *name, uint32_t kind,
		 struct sm_plugin **plugin, struct sm_error *err)
{
	char tried[768] = "";
	size_t used = 0;

	for (size_t i = 0; i < search->count; i++) {
		char path[PATH_MAX];
		struct stat st;
		int ret;

		snprintf(path, sizeof(path), "%s/%s.so", search->dirs[i], name);
		if (used < sizeof(tried))
			used += snprintf(tried + used, sizeof(tried) - used, "%s%s",
					 i ? ", " : "", search->dirs[i]);
		if (stat(path, &st) != 0)
			continue;

		ret = plugin__open(path, plugin, err);
		if (ret)
			return ret;
		if ((*plugin)->desc.kind != kind) {
			ret = sm_error__set(err, EINVAL, "%s: plugin '%s' is a %s plugin, expected a %s plugin",
					    path, name, plugin__kind_name((*plugin)->desc.kind),
					    plugin__kind_name(kind));
			plugin__close(*plugin);
			*plugin = NULL;
			return ret;
		}
		return 0;
	}
	return sm_error__set(err, ENOENT,
		"%s plugin '%s' not found: no %s.so in %s; set --plugin-path or SMCORE_PLUGIN_PATH",
		plugin__kind_name(kind), name, name, search->count ? tried : "(no plugin directories)");
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print every *.so in one directory; returns the number of valid plugins. */
static int list_dir(const char *dir, FILE *out)
{
	struct dirent *entry;
	char **names = NULL;
	size_t count = 0;
	int found = 0;
	DIR *handle;

	handle = opendir(dir);
	if (!handle)
		return 0;
	while ((entry = readdir(handle))) {
		size_t len = strlen(entry->d_name);
		char **grown;

		if (len < 4 || strcmp(entry->d_name + len - 3, ".so") != 0)
			continue;
		grown = realloc(names, (count + 1) * sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[count] = strdup(entry->d_name);
		if (names[count])
			count++;
	}
	closedir(handle);
	qsort(names, count, sizeof(*names), compare_names);

	for (size_t i = 0; i < count; i++) {
		struct sm_plugin *plugin;
		struct sm_error err = { 0 };
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (plugin__open(path, &plugin, &err) == 0) {
			fprintf(out, "%-12s %-16s %-10s ABI %u.%u  %s\n", plugin__kind_name(plugin->desc.kind),
				plugin->desc.name, plugin->desc.version ? plugin->desc.version : "-",
				plugin->desc.abi_major, plugin->desc.abi_minor, path);
			plugin__close(plugin);
			found++;
		} else {
			fprintf(out, "%-12s %-16s rejected: %s\n", "-", names[i], err.message);
		}
		free(names[i]);
	}
	free(names);
	return found;
}

int plugin__list(const struct plugin_search *search, FILE *out)
{
	int found = 0;

	fprintf(out, "%-12s %-16s %-10s %-8s %s\n", "KIND", "NAME", "VERSION", "ABI", "PATH");
	for (size_t i = 0; i < search->count; i++)
		found += list_dir(search->dirs[i], out);
	return found;
}
