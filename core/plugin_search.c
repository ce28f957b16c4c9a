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
		if ((*plugin)->desc.kind != kind)
			ret = sm_error__set(err, EINVAL, "%s: plugin '%s' has kind %s, expected kind %s",
					    path, name, plugin__kind_name((*plugin)->desc.kind),
					    plugin__kind_name(kind));
		else if (strcmp((*plugin)->desc.name, name) != 0)
			ret = sm_error__set(err, EINVAL,
					    "%s: the file holds plugin '%s', not '%s'; a plugin's file must be NAME.so",
					    path, (*plugin)->desc.name, name);
		if (ret) {
			plugin__close(*plugin);
			*plugin = NULL;
		}
		return ret;
	}
	return sm_error__set(err, ENOENT,
		"%s plugin '%s' not found: no %s.so in %s; set --plugin-path or SMCORE_PLUGIN_PATH",
		plugin__kind_name(kind), name, name, search->count ? tried : "(no plugin directories)");
}

/* Copy `text` for printing, with control characters and non-ASCII bytes shown as '?'. */
static const char *printable(const char *text, char *buf, size_t size)
{
	size_t i = 0;

	for (; text && text[i] && i + 1 < size; i++)
		buf[i] = (unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f ? '?' : text[i];
	buf[i] = '\0';
	return text ? buf : "-";
}

/* Returns whether the file name `file` is "<name>.so". */
static int file_matches_name(const char *file, const char *name)
{
	size_t len = strlen(name);

	return strncmp(file, name, len) == 0 && strcmp(file + len, ".so") == 0;
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
			char name[64], version[64], file[256];
			int matches = file_matches_name(names[i], plugin->desc.name);

			fprintf(out, "%-12s %-16s %-10s ABI %u.%u  %s%s\n", plugin__kind_name(plugin->desc.kind),
				printable(plugin->desc.name, name, sizeof(name)),
				printable(plugin->desc.version, version, sizeof(version)),
				plugin->desc.abi_major, plugin->desc.abi_minor,
				printable(path, file, sizeof(file)),
				matches ? "" : "  (not found by name: the file must be NAME.so)");
			plugin__close(plugin);
			found += matches;
		} else {
			char file[256], message[sizeof(err.message)];

			fprintf(out, "%-12s %-16s rejected: %s\n", "-", printable(names[i], file, sizeof(file)),
				printable(err.message, message, sizeof(message)));
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
