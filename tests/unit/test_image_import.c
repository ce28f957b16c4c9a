/* SPDX-License-Identifier: Apache-2.0 */
/* Image import into squashfs, checked by listing and extracting the result with unsquashfs. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "image_import.h"
#include "oci_fixtures.h"
#include "sha256.h"

struct layer {
	const struct layer_entry *entries;
	size_t count;
};

struct fixture {
	char dir[64];
	char source[128];
	char out_dir[128];    /* contains only the output after an import */
	char output[160];
	char extract[128];    /* where unsquashfs -d extracts the image */
	char outside[128];    /* an escaping entry would land here */
	struct image_files image;
	char manifest_hex[65];
};

static const char config_json[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
	"\"Cmd\":[\"cat\",\"/etc/hostname\"],\"Env\":[\"PATH=/bin\"],\"WorkingDir\":\"/etc\"},"
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* Owners survive only when the import runs as root; otherwise mksquashfs -all-root makes them 0. */
static unsigned int expected_owner(unsigned int id)
{
	return geteuid() == 0 ? id : 0;
}

/* Two layers that exercise whiteouts, an opaque directory, a hard link to a lower file and a symlink. */
static const struct layer_entry lower_entries[] = {
	{ .path = "etc", .type = AE_IFDIR, .perm = 0755 },
	{ .path = "etc/hostname", .type = AE_IFREG, .data = "one\n" },
	{ .path = "etc/removed", .type = AE_IFREG, .data = "gone" },
	{ .path = "opaque", .type = AE_IFDIR, .perm = 0755 },
	{ .path = "opaque/old", .type = AE_IFREG, .data = "old" },
	{ .path = "opaque/sub/deep", .type = AE_IFREG, .data = "deep" },
	{ .path = "bin", .type = AE_IFDIR, .perm = 0755 },
	{ .path = "bin/tool", .type = AE_IFREG, .perm = 04755, .data = "#!/bin/sh\n" },
	{ .path = "data", .type = AE_IFDIR, .perm = 0700, .uid = 1000, .gid = 1000 },
	{ .path = "data/original", .type = AE_IFREG, .perm = 0640, .data = "shared",
	  .uid = 1000, .gid = 1001 },
};
static const struct layer_entry upper_entries[] = {
	{ .path = "etc/.wh.removed", .type = AE_IFREG },
	{ .path = "etc/hostname", .type = AE_IFREG, .data = "two\n" },
	{ .path = "etc/motd", .type = AE_IFLNK, .perm = 0777, .data = "hostname" },
	{ .path = "opaque", .type = AE_IFDIR, .perm = 0751 },
	{ .path = "opaque/.wh..wh..opq", .type = AE_IFREG },
	{ .path = "opaque/new", .type = AE_IFREG, .data = "new" },
	{ .path = "data/link", .type = AE_IFREG, .hard_link = "data/original", .uid = 1000,
	  .gid = 1001 },
};
static const struct layer merged_layers[] = {
	{ lower_entries, sizeof(lower_entries) / sizeof(lower_entries[0]) },
	{ upper_entries, sizeof(upper_entries) / sizeof(upper_entries[0]) },
};

static const char *layer_media_type(enum filter filter)
{
	if (filter == FILTER_GZIP)
		return "application/vnd.oci.image.layer.v1.tar+gzip";
	if (filter == FILTER_ZSTD)
		return "application/vnd.oci.image.layer.v1.tar+zstd";
	return "application/vnd.oci.image.layer.v1.tar";
}

/* Fill `fixture` with the files of an OCI layout holding `layers`. */
static void build_oci(struct fixture *fixture, enum filter filter, const struct layer *layers,
		      size_t layer_count)
{
	char config_digest[72], manifest_digest[72], layer_digest[72];
	char manifest[4096], index[1024];
	const char *layout = "{\"imageLayoutVersion\": \"1.0.0\"}";
	int length;

	add_file(&fixture->image, "oci-layout", layout, strlen(layout));
	add_blob(&fixture->image, config_json, strlen(config_json), config_digest);
	length = snprintf(manifest, sizeof(manifest),
			  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			  "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
			  config_digest, strlen(config_json));
	for (size_t i = 0; i < layer_count; i++) {
		size_t size;
		void *data = make_layer(filter, layers[i].entries, layers[i].count, &size);

		add_blob(&fixture->image, data, size, layer_digest);
		free(data);
		length += snprintf(manifest + length, sizeof(manifest) - (size_t)length,
				   "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
				   i ? "," : "", layer_media_type(filter), layer_digest, size);
	}
	snprintf(manifest + length, sizeof(manifest) - (size_t)length, "]}");
	add_blob(&fixture->image, manifest, strlen(manifest), manifest_digest);
	memcpy(fixture->manifest_hex, manifest_digest + 7, 65);

	snprintf(index, sizeof(index),
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		 "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
		 manifest_digest, strlen(manifest));
	add_file(&fixture->image, "index.json", index, strlen(index));
}

/* Fill `fixture` with the files of a `docker save` archive holding `layers`. */
static void build_docker(struct fixture *fixture, enum filter filter, const struct layer *layers,
			 size_t layer_count)
{
	char config_hex[65], name[128], manifest[2048];
	struct sha256 key;
	int length;

	sha256__hex(config_json, strlen(config_json), config_hex);
	snprintf(name, sizeof(name), "%s.json", config_hex);
	add_file(&fixture->image, name, config_json, strlen(config_json));
	length = snprintf(manifest, sizeof(manifest),
			  "[{\"Config\":\"%s.json\",\"RepoTags\":[\"example:latest\"],\"Layers\":[",
			  config_hex);
	for (size_t i = 0; i < layer_count; i++) {
		size_t size;
		void *data = make_layer(filter, layers[i].entries, layers[i].count, &size);

		snprintf(name, sizeof(name), "layer%zu/layer.tar", i);
		add_file(&fixture->image, name, data, size);
		free(data);
		length += snprintf(manifest + length, sizeof(manifest) - (size_t)length, "%s\"%s\"",
				   i ? "," : "", name);
	}
	snprintf(manifest + length, sizeof(manifest) - (size_t)length, "]}]");
	add_file(&fixture->image, "manifest.json", manifest, strlen(manifest));
	/* The cache key of a docker-archive covers manifest.json and the config. */
	sha256__init(&key);
	sha256__update(&key, manifest, strlen(manifest));
	sha256__update(&key, config_json, strlen(config_json));
	sha256__final(&key, fixture->manifest_hex);
}

/* Write an image of `format` holding `layers` to fixture->source. */
static void write_image(struct fixture *fixture, enum oci_image_format format, enum filter filter,
			const struct layer *layers, size_t layer_count)
{
	if (format == OCI_IMAGE_DOCKER_ARCHIVE)
		build_docker(fixture, filter, layers, layer_count);
	else
		build_oci(fixture, filter, layers, layer_count);
	if (format == OCI_IMAGE_LAYOUT)
		write_directory(&fixture->image, fixture->source);
	else
		write_tar(&fixture->image, fixture->source, "");
}

static void reset_fixture(struct fixture *fixture)
{
	free_image_files(&fixture->image);
	remove_tree(fixture->source);
	remove_tree(fixture->extract);
	unlink(fixture->output);
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	strcpy(fixture->dir, "/tmp/smcore-image-import-XXXXXX");
	assert_non_null(mkdtemp(fixture->dir));
	snprintf(fixture->source, sizeof(fixture->source), "%s/image", fixture->dir);
	snprintf(fixture->out_dir, sizeof(fixture->out_dir), "%s/out", fixture->dir);
	snprintf(fixture->output, sizeof(fixture->output), "%s/root.squashfs", fixture->out_dir);
	snprintf(fixture->extract, sizeof(fixture->extract), "%s/extract", fixture->dir);
	snprintf(fixture->outside, sizeof(fixture->outside), "%s/outside", fixture->dir);
	assert_int_equal(mkdir(fixture->out_dir, 0755), 0);
	assert_int_equal(mkdir(fixture->outside, 0755), 0);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	reset_fixture(fixture);
	remove_tree(fixture->dir);
	free(fixture);
	return 0;
}

/* Return the number of entries in `dir` other than "." and "..". */
static size_t count_entries(const char *dir)
{
	DIR *stream = opendir(dir);
	struct dirent *entry;
	size_t count = 0;

	assert_non_null(stream);
	while ((entry = readdir(stream)) != NULL)
		if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
			count++;
	closedir(stream);
	return count;
}

/* Run `unsquashfs -lln` on `image` and return its output; the caller frees it. */
static char *list_image(const char *image)
{
	char command[512];
	char *listing = NULL;
	size_t size = 0;
	FILE *pipe;
	FILE *text = open_memstream(&listing, &size);
	char line[1024];

	assert_non_null(text);
	snprintf(command, sizeof(command), "unsquashfs -lln '%s'", image);
	pipe = popen(command, "r");
	assert_non_null(pipe);
	while (fgets(line, sizeof(line), pipe) != NULL)
		fputs(line, text);
	assert_int_equal(pclose(pipe), 0);
	fclose(text);
	return listing;
}

/*
 * Return the listing line for `path` (as "squashfs-root/PATH"), copied to
 * `line`, or NULL when the image does not contain it.
 */
static const char *find_listed(const char *listing, const char *path, char *line, size_t size)
{
	char suffix[256];
	const char *start = listing;

	snprintf(suffix, sizeof(suffix), " squashfs-root%s%s", path[0] ? "/" : "", path);
	while (*start) {
		const char *end = strchr(start, '\n');
		size_t length = end ? (size_t)(end - start) : strlen(start);
		const char *arrow = memmem(start, length, " -> ", 4);
		size_t name_end = arrow ? (size_t)(arrow - start) : length;
		size_t suffix_length = strlen(suffix);

		if (name_end >= suffix_length &&
		    memcmp(start + name_end - suffix_length, suffix, suffix_length) == 0) {
			snprintf(line, size, "%.*s", (int)length, start);
			return line;
		}
		start = end ? end + 1 : start + length;
	}
	return NULL;
}

/* Check that `path` is listed with the mode string `mode` and the owner "UID/GID". */
static void assert_listed(const char *listing, const char *path, const char *mode,
			  unsigned int uid, unsigned int gid)
{
	char line[1024];
	char owner[32];

	if (find_listed(listing, path, line, sizeof(line)) == NULL)
		fail_msg("%s is not in the image; listing:\n%s", path, listing);
	if (strncmp(line, mode, strlen(mode)) != 0)
		fail_msg("%s: expected mode %s, listed as: %s", path, mode, line);
	snprintf(owner, sizeof(owner), " %u/%u ", expected_owner(uid), expected_owner(gid));
	if (strstr(line, owner) == NULL)
		fail_msg("%s: expected owner%s, listed as: %s", path, owner, line);
}

static void assert_not_listed(const char *listing, const char *path)
{
	char line[1024];

	if (find_listed(listing, path, line, sizeof(line)) != NULL)
		fail_msg("%s should not be in the image: %s", path, line);
}

static void assert_extracted_file(struct fixture *fixture, const char *name, const char *expected)
{
	char path[512];
	char data[256] = { 0 };
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", fixture->extract, name);
	file = fopen(path, "r");
	if (file == NULL)
		fail_msg("%s was not extracted from the image", path);
	assert_int_equal(fread(data, 1, sizeof(data) - 1, file), strlen(expected));
	fclose(file);
	assert_string_equal(data, expected);
}

/* Check the squashfs built from merged_layers: listing, contents and the cross-layer hard link. */
static void assert_merged_image(struct fixture *fixture, const char *image)
{
	char *listing = list_image(image);
	char command[512];
	char path[512];
	struct stat original, link;

	assert_listed(listing, "", "drwxr-xr-x", 0, 0);
	assert_listed(listing, "etc/hostname", "-rw-r--r--", 0, 0);
	assert_listed(listing, "etc/motd", "lrwxrwxrwx", 0, 0);
	assert_non_null(strstr(listing, "squashfs-root/etc/motd -> hostname\n"));
	assert_not_listed(listing, "etc/removed");
	assert_not_listed(listing, "etc/.wh.removed");
	assert_listed(listing, "opaque", "drwxr-x--x", 0, 0);
	assert_listed(listing, "opaque/new", "-rw-r--r--", 0, 0);
	assert_not_listed(listing, "opaque/old");
	assert_not_listed(listing, "opaque/sub");
	assert_not_listed(listing, "opaque/.wh..wh..opq");
	assert_listed(listing, "bin/tool", "-rwsr-xr-x", 0, 0);
	assert_listed(listing, "data", "drwx------", 1000, 1000);
	assert_listed(listing, "data/original", "-rw-r-----", 1000, 1001);
	assert_listed(listing, "data/link", "-rw-r-----", 1000, 1001);
	free(listing);

	snprintf(command, sizeof(command), "unsquashfs -no-progress -quiet -d '%s' '%s' >/dev/null",
		 fixture->extract, image);
	assert_int_equal(system(command), 0);
	assert_extracted_file(fixture, "etc/hostname", "two\n");
	assert_extracted_file(fixture, "opaque/new", "new");
	assert_extracted_file(fixture, "data/link", "shared");
	snprintf(path, sizeof(path), "%s/data/original", fixture->extract);
	assert_int_equal(stat(path, &original), 0);
	snprintf(path, sizeof(path), "%s/data/link", fixture->extract);
	assert_int_equal(stat(path, &link), 0);
	assert_int_equal(original.st_ino, link.st_ino);
	assert_int_equal(original.st_nlink, 2);
}

static void assert_config(const struct fixture *fixture, const struct oci_image *config)
{
	assert_string_equal(config->manifest_digest, fixture->manifest_hex);
	assert_string_equal(config->cmd[0], "cat");
	assert_string_equal(config->cmd[1], "/etc/hostname");
	assert_null(config->cmd[2]);
	assert_null(config->entrypoint[0]);
	assert_string_equal(config->env[0], "PATH=/bin");
	assert_null(config->env[1]);
	assert_string_equal(config->working_dir, "/etc");
	assert_string_equal(config->user, "");
	assert_int_equal(config->layer_count, 0);
	assert_null(config->layers[0]);
}

/* Import merged_layers in `format` with each layer compression and check every result. */
static void import_each_compression(struct fixture *fixture, enum oci_image_format format)
{
	static const enum filter filters[] = { FILTER_NONE, FILTER_GZIP, FILTER_ZSTD };

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		struct sm_error err = { 0 };
		struct oci_image config;
		int ret;

		reset_fixture(fixture);
		write_image(fixture, format, filters[i], merged_layers, 2);
		ret = image_import__to_file(fixture->source, fixture->output, &config, &err);
		if (ret != 0)
			fail_msg("import of %s with filter %d failed: %s",
				 oci_image__format_name(format), (int)filters[i], err.message);
		assert_int_equal(config.format, format);
		assert_config(fixture, &config);
		oci_image__release(&config);
		assert_merged_image(fixture, fixture->output);
		/* The temporary directory next to the output is gone. */
		assert_int_equal(count_entries(fixture->out_dir), 1);
	}
}

static void oci_layout_imported(void **state)
{
	import_each_compression(*state, OCI_IMAGE_LAYOUT);
}

static void oci_archive_imported(void **state)
{
	import_each_compression(*state, OCI_IMAGE_ARCHIVE);
}

static void docker_archive_imported(void **state)
{
	import_each_compression(*state, OCI_IMAGE_DOCKER_ARCHIVE);
}

static void dot_dot_layer_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	const struct layer_entry escape[] = {
		{ .path = "ok", .type = AE_IFREG, .data = "fine" },
		{ .path = "../escape", .type = AE_IFREG, .data = "evil" },
	};
	const struct layer layers[] = { merged_layers[0], { escape, 2 } };

	write_image(fixture, OCI_IMAGE_ARCHIVE, FILTER_GZIP, layers, 2);
	assert_true(image_import__to_file(fixture->source, fixture->output, NULL, &err) < 0);
	assert_non_null(strstr(err.message, fixture->source));
	assert_non_null(strstr(err.message, "layer 2/2"));
	assert_non_null(strstr(err.message, "entry ../escape"));
	assert_false(exists_in(fixture->out_dir, "root.squashfs"));
	assert_int_equal(count_entries(fixture->out_dir), 0);
	assert_false(exists_in(fixture->dir, "escape"));
	assert_false(exists_in(fixture->out_dir, "../escape"));
}

static void symlinked_escape_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct image_root root;
	char cache[160];
	const struct layer_entry link[] = {
		{ .path = "evil", .type = AE_IFLNK, .perm = 0777, .data = fixture->outside },
	};
	const struct layer_entry through[] = {
		{ .path = "evil/planted", .type = AE_IFREG, .data = "evil" },
	};
	const struct layer layers[] = { { link, 1 }, { through, 1 } };

	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_NONE, layers, 2);
	snprintf(cache, sizeof(cache), "%s/cache", fixture->dir);
	assert_true(image_import__cached(fixture->source, cache, &root, &err) < 0);
	assert_non_null(strstr(err.message, "entry evil/planted"));
	assert_null(root.path);
	assert_int_equal(count_entries(cache), 0);
	assert_int_equal(count_entries(fixture->outside), 0);
}

static void cache_hit_skips_import(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct image_root first, second;
	char cache[160], expected_path[256], blob[512];
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	struct stat before, after;
	int ret;

	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_ZSTD, merged_layers, 2);
	snprintf(cache, sizeof(cache), "%s/cache/images", fixture->dir);
	assert_int_equal(image_import__cached(fixture->source, cache, &first, &err), 0);
	snprintf(expected_path, sizeof(expected_path), "%s/%s.squashfs", cache, fixture->manifest_hex);
	assert_string_equal(first.path, expected_path);
	assert_string_equal(first.fs_type, "squashfs");
	assert_true(first.imported);
	assert_config(fixture, &first.config);
	assert_merged_image(fixture, first.path);
	assert_int_equal(stat(first.path, &before), 0);

	/* A second import would need the layer blobs and mksquashfs; neither is there now. */
	for (size_t i = 0; i < fixture->image.count; i++) {
		if (strncmp(fixture->image.files[i].name, "blobs/", 6) == 0 &&
		    fixture->image.files[i].data[0] != '{') {
			snprintf(blob, sizeof(blob), "%s/%s", fixture->source, fixture->image.files[i].name);
			assert_int_equal(unlink(blob), 0);
		}
	}
	setenv("PATH", "/nonexistent", 1);
	ret = image_import__cached(fixture->source, cache, &second, &err);
	if (old_path)
		setenv("PATH", old_path, 1);
	free(old_path);
	if (ret != 0)
		fail_msg("cache hit failed: %s", err.message);
	assert_false(second.imported);
	assert_string_equal(second.path, expected_path);
	assert_config(fixture, &second.config);
	assert_int_equal(stat(second.path, &after), 0);
	assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(count_entries(cache), 1);
	image_root__release(&first);
	image_root__release(&second);
}

static void cache_hit_for_archive(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct image_root first, second;
	char cache[160];

	write_image(fixture, OCI_IMAGE_DOCKER_ARCHIVE, FILTER_GZIP, merged_layers, 2);
	snprintf(cache, sizeof(cache), "%s/cache", fixture->dir);
	assert_int_equal(image_import__cached(fixture->source, cache, &first, &err), 0);
	assert_true(first.imported);
	assert_int_equal(image_import__cached(fixture->source, cache, &second, &err), 0);
	assert_false(second.imported);
	assert_string_equal(first.path, second.path);
	assert_config(fixture, &second.config);
	assert_int_equal(count_entries(cache), 1);
	image_root__release(&first);
	image_root__release(&second);
}

/* Run an import with PATH set to `path`, returning its result and message. */
static int import_with_path(struct fixture *fixture, const char *path, struct sm_error *err)
{
	char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	int ret;

	setenv("PATH", path, 1);
	ret = image_import__to_file(fixture->source, fixture->output, NULL, err);
	if (old_path)
		setenv("PATH", old_path, 1);
	else
		unsetenv("PATH");
	free(old_path);
	return ret;
}

static void mksquashfs_missing_reported(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };

	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_NONE, merged_layers, 2);
	assert_int_equal(import_with_path(fixture, "/nonexistent", &err), -ENOENT);
	assert_non_null(strstr(err.message, "mksquashfs not found"));
	assert_non_null(strstr(err.message, "install squashfs-tools"));
	assert_int_equal(count_entries(fixture->out_dir), 0);
}

static void mksquashfs_failure_reported(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char bin[160], script[192];
	FILE *file;

	snprintf(bin, sizeof(bin), "%s/bin", fixture->dir);
	snprintf(script, sizeof(script), "%s/mksquashfs", bin);
	assert_int_equal(mkdir(bin, 0755), 0);
	file = fopen(script, "w");
	assert_non_null(file);
	/* A failing mksquashfs that leaves a partial image behind. */
	fprintf(file, "#!/bin/sh\necho partial > \"$2\"\necho 'FATAL ERROR: out of space' >&2\nexit 3\n");
	fclose(file);
	assert_int_equal(chmod(script, 0755), 0);

	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_NONE, merged_layers, 2);
	assert_true(import_with_path(fixture, bin, &err) < 0);
	assert_non_null(strstr(err.message, "mksquashfs failed with exit status 3"));
	assert_non_null(strstr(err.message, "FATAL ERROR: out of space"));
	assert_int_equal(count_entries(fixture->out_dir), 0);
}

static void existing_output_replaced(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char magic[4];
	FILE *file = fopen(fixture->output, "w");

	assert_non_null(file);
	fputs("old contents", file);
	fclose(file);
	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_NONE, merged_layers, 2);
	assert_int_equal(image_import__to_file(fixture->source, fixture->output, NULL, &err), 0);
	file = fopen(fixture->output, "r");
	assert_non_null(file);
	assert_int_equal(fread(magic, 1, 4, file), 4);
	fclose(file);
	assert_memory_equal(magic, "hsqs", 4);
	assert_int_equal(count_entries(fixture->out_dir), 1);
}

static void missing_source_reported(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };

	assert_int_equal(image_import__to_file(fixture->source, fixture->output, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.message, fixture->source));
	assert_non_null(strstr(err.message, "No such file or directory"));
	assert_int_equal(count_entries(fixture->out_dir), 0);
}

static void unknown_format_reported(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct image_root root;
	char cache[160];

	assert_int_equal(mkdir(fixture->source, 0755), 0);
	snprintf(cache, sizeof(cache), "%s/cache", fixture->dir);
	assert_int_equal(image_import__cached(fixture->source, cache, &root, &err), -EINVAL);
	assert_non_null(strstr(err.message, fixture->source));
	assert_non_null(strstr(err.message, "without oci-layout and index.json"));
	assert_false(exists_in(fixture->dir, "cache"));
}

static void missing_output_directory_reported(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	char output[256];

	write_image(fixture, OCI_IMAGE_LAYOUT, FILTER_NONE, merged_layers, 2);
	snprintf(output, sizeof(output), "%s/missing/root.squashfs", fixture->dir);
	assert_int_equal(image_import__to_file(fixture->source, output, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.message, output));
	assert_non_null(strstr(err.message, "the output directory must exist and be writable"));
	assert_false(exists_in(fixture->dir, "missing"));
}

static void default_cache_dir_chosen(void **state)
{
	const char *names[] = { "SMCORE_CACHE_DIR", "XDG_CACHE_HOME", "HOME" };
	char *saved[3];
	char *dir;

	for (size_t i = 0; i < 3; i++)
		saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;

	setenv("SMCORE_CACHE_DIR", "/srv/smcore-cache", 1);
	dir = image_import__default_cache_dir();
	assert_string_equal(dir, "/srv/smcore-cache/images");
	free(dir);

	unsetenv("SMCORE_CACHE_DIR");
	setenv("XDG_CACHE_HOME", "/home/user/.xdg-cache", 1);
	setenv("HOME", "/home/user", 1);
	dir = image_import__default_cache_dir();
	assert_string_equal(dir, geteuid() == 0 ? "/var/cache/smcore/images" :
				 "/home/user/.xdg-cache/smcore/images");
	free(dir);

	unsetenv("XDG_CACHE_HOME");
	dir = image_import__default_cache_dir();
	assert_string_equal(dir, geteuid() == 0 ? "/var/cache/smcore/images" :
				 "/home/user/.cache/smcore/images");
	free(dir);

	for (size_t i = 0; i < 3; i++) {
		if (saved[i])
			setenv(names[i], saved[i], 1);
		else
			unsetenv(names[i]);
		free(saved[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(oci_layout_imported, setup, teardown),
		cmocka_unit_test_setup_teardown(oci_archive_imported, setup, teardown),
		cmocka_unit_test_setup_teardown(docker_archive_imported, setup, teardown),
		cmocka_unit_test_setup_teardown(dot_dot_layer_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(symlinked_escape_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(cache_hit_skips_import, setup, teardown),
		cmocka_unit_test_setup_teardown(cache_hit_for_archive, setup, teardown),
		cmocka_unit_test_setup_teardown(mksquashfs_missing_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(mksquashfs_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(existing_output_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_source_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_format_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_output_directory_reported, setup, teardown),
		cmocka_unit_test(default_cache_dir_chosen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
