/* SPDX-License-Identifier: Apache-2.0 */
/* Read an image's manifest, config and layer list from an OCI layout, oci-archive or docker-archive. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "oci_image.h"
#include "sha256.h"

/* Manifests, indexes and configs are small, and the limit stops a hostile image from exhausting memory. */
#define MAX_JSON_SIZE (4u << 20)
#define MAX_INDEX_DEPTH 4

#define MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static const char empty_array[] = "[]";
static const char empty_object[] = "{}";

/* ---- Image files ---- */

struct image_reader {
	const char *source;
	enum oci_image_format format;
	struct sm_error *err;
};

struct buffer {
	char *data;
	size_t size;
};

/* Check that a path inside the image is relative and has no ".." component. */
static bool is_safe_member_path(const char *path)
{
	const char *p = path;

	if (path[0] == '\0' || path[0] == '/')
		return false;
	while (*p) {
		size_t length = strcspn(p, "/");

		if (length == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += length;
		if (*p == '/')
			p++;
	}
	return true;
}

/* Strip the "./" prefixes that tar writers add. */
static const char *member_name(const char *pathname)
{
	while (pathname[0] == '.' && pathname[1] == '/')
		pathname += 2;
	return pathname;
}

static struct archive *open_tar(struct image_reader *reader)
{
	struct archive *archive = archive_read_new();

	if (archive == NULL) {
		sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
		return NULL;
	}
	archive_read_support_filter_all(archive);
	archive_read_support_format_tar(archive);
	if (archive_read_open_filename(archive, reader->source, 64 * 1024) != ARCHIVE_OK) {
		sm_error__set(reader->err, EINVAL, "%s: not a readable tar file: %s", reader->source,
			      archive_error_string(archive));
		archive_read_free(archive);
		return NULL;
	}
	return archive;
}

static int read_tar_member(struct image_reader *reader, const char *name, struct buffer *out)
{
	struct archive *archive = open_tar(reader);
	struct archive_entry *entry;
	int status;
	int ret = -ENOENT;

	if (archive == NULL)
		return -reader->err->code;
	while ((status = archive_read_next_header(archive, &entry)) == ARCHIVE_OK) {
		la_int64_t size = archive_entry_size(entry);
		la_ssize_t got;

		if (strcmp(member_name(archive_entry_pathname(entry)), name) != 0 ||
		    archive_entry_filetype(entry) != AE_IFREG)
			continue;
		if (size < 0 || size > MAX_JSON_SIZE) {
			ret = sm_error__set(reader->err, EFBIG, "%s: %s is larger than %u bytes",
					    reader->source, name, MAX_JSON_SIZE);
			goto out;
		}
		out->data = malloc((size_t)size + 1);
		if (out->data == NULL) {
			ret = sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
			goto out;
		}
		got = archive_read_data(archive, out->data, (size_t)size);
		if (got != size) {
			free(out->data);
			out->data = NULL;
			ret = sm_error__set(reader->err, EIO, "%s: reading %s failed: %s",
					    reader->source, name, archive_error_string(archive));
			goto out;
		}
		out->size = (size_t)size;
		ret = 0;
		goto out;
	}
	if (status != ARCHIVE_EOF)
		ret = sm_error__set(reader->err, EIO, "%s: invalid tar file: %s", reader->source,
				    archive_error_string(archive));
	else
		ret = sm_error__set(reader->err, ENOENT, "%s: %s not found in the archive",
				    reader->source, name);
out:
	archive_read_free(archive);
	return ret;
}

static int read_directory_member(struct image_reader *reader, const char *name, struct buffer *out)
{
	char path[4096];
	struct stat st;
	int fd;
	ssize_t got;

	snprintf(path, sizeof(path), "%s/%s", reader->source, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sm_error__set(reader->err, errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_JSON_SIZE) {
		close(fd);
		return sm_error__set(reader->err, EINVAL,
				     "%s: not a regular file of at most %u bytes", path, MAX_JSON_SIZE);
	}
	out->data = malloc((size_t)st.st_size + 1);
	if (out->data == NULL) {
		close(fd);
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", path);
	}
	got = read(fd, out->data, (size_t)st.st_size);
	close(fd);
	if (got != st.st_size) {
		free(out->data);
		out->data = NULL;
		return sm_error__set(reader->err, EIO, "%s: short read", path);
	}
	out->size = (size_t)got;
	return 0;
}

/* Read the small file `name` of the image into `out` (NUL-terminated, caller frees data). */
static int read_member(struct image_reader *reader, const char *name, struct buffer *out)
{
	int ret;

	if (!is_safe_member_path(name))
		return sm_error__set(reader->err, EINVAL, "%s: invalid path %s in the image",
				     reader->source, name);
	if (reader->format == OCI_IMAGE_LAYOUT)
		ret = read_directory_member(reader, name, out);
	else
		ret = read_tar_member(reader, name, out);
	if (ret == 0)
		out->data[out->size] = '\0';
	return ret;
}

static int read_json(struct image_reader *reader, const char *name, char shape,
		     struct buffer *buffer, struct json_value *root)
{
	int ret = read_member(reader, name, buffer);

	if (ret < 0)
		return ret;
	if (json__parse(buffer->data, buffer->size, root) < 0 || *root->start != shape) {
		free(buffer->data);
		buffer->data = NULL;
		return sm_error__set(reader->err, EINVAL, "%s: %s is not a valid JSON %s",
				     reader->source, name, shape == '{' ? "object" : "array");
	}
	return 0;
}

static int get_string(struct image_reader *reader, const char *file, const struct json_value *object,
		      const char *name, char **out)
{
	struct json_value value;
	int ret = json__member(object, name, &value);

	if (ret < 0)
		return ret;
	ret = json__string(&value, out);
	if (ret == -ENOMEM)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
	if (ret < 0)
		return sm_error__set(reader->err, EINVAL, "%s: %s: \"%s\" is not a valid string",
				     reader->source, file, name);
	return 0;
}

static void free_strings(char **strings)
{
	if (strings == NULL)
		return;
	for (char **p = strings; *p; p++)
		free(*p);
	free(strings);
}

/* Read an array of strings into a NULL-terminated vector; a missing or null member gives an empty one. */
static int get_string_array(struct image_reader *reader, const char *file,
			    const struct json_value *object, const char *name, char ***out,
			    size_t *count_out)
{
	struct json_value array, key, item;
	const char *cursor = NULL;
	size_t count = 0;
	char **strings;

	if (json__member(object, name, &array) < 0)
		array = (struct json_value){ empty_array, empty_array + 2 };
	if (*array.start != '[')
		return sm_error__set(reader->err, EINVAL, "%s: %s: \"%s\" is not an array",
				     reader->source, file, name);
	while (json__next(&array, &cursor, &key, &item))
		count++;
	strings = calloc(count + 1, sizeof(*strings));
	if (strings == NULL)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);

	cursor = NULL;
	for (size_t i = 0; json__next(&array, &cursor, &key, &item); i++) {
		if (json__string(&item, &strings[i]) < 0) {
			strings[i] = NULL;
			free_strings(strings);
			return sm_error__set(reader->err, EINVAL,
					     "%s: %s: \"%s\" element %zu is not a valid string",
					     reader->source, file, name, i);
		}
	}
	*out = strings;
	if (count_out)
		*count_out = count;
	return 0;
}

/* Turn "sha256:HEX" into the blob path; only sha256 with 64 lowercase hex digits is accepted. */
static int blob_path(struct image_reader *reader, const char *file, const char *digest,
		     char path[80], char hex[65])
{
	const char *value = digest + strlen("sha256:");
	bool valid = strncmp(digest, "sha256:", 7) == 0 && strlen(value) == 64;

	for (size_t i = 0; valid && i < 64; i++)
		valid = is_digit(value[i]) || (value[i] >= 'a' && value[i] <= 'f');
	if (!valid)
		return sm_error__set(reader->err, EINVAL,
				     "%s: %s: unsupported digest \"%s\", expected sha256:<64 hex digits>",
				     reader->source, file, digest);
	snprintf(path, 80, "blobs/sha256/%s", value);
	memcpy(hex, value, 65);
	return 0;
}

/* Check a descriptor's optional "size" against the blob's size in bytes. */
static bool size_matches(const struct json_value *descriptor, size_t size)
{
	struct json_value value;
	uint64_t declared = 0;

	if (json__member(descriptor, "size", &value) < 0)
		return true;
	for (const char *p = value.start; p < value.end; p++) {
		if (!is_digit(*p) || declared > (UINT64_MAX - 9) / 10)
			return false;
		declared = declared * 10 + (uint64_t)(*p - '0');
	}
	return declared == size;
}

/* Read the blob a descriptor points to and check it against the descriptor's digest. */
static int read_blob(struct image_reader *reader, const char *file,
		     const struct json_value *descriptor, struct buffer *blob, struct json_value *root)
{
	char *digest = NULL;
	char path[80];
	char expected[65];
	char actual[65];
	int ret;

	ret = get_string(reader, file, descriptor, "digest", &digest);
	if (ret == -ENOENT)
		return sm_error__set(reader->err, EINVAL, "%s: %s: descriptor without a digest",
				     reader->source, file);
	if (ret < 0)
		return ret;
	ret = blob_path(reader, file, digest, path, expected);
	free(digest);
	if (ret < 0)
		return ret;
	ret = read_json(reader, path, '{', blob, root);
	if (ret < 0)
		return ret;
	if (!size_matches(descriptor, blob->size)) {
		free(blob->data);
		blob->data = NULL;
		return sm_error__set(reader->err, EINVAL, "%s: %s: size differs from %s, which has %zu bytes",
				     reader->source, file, path, blob->size);
	}
	sha256__hex(blob->data, blob->size, actual);
	if (strcmp(actual, expected) != 0) {
		free(blob->data);
		blob->data = NULL;
		return sm_error__set(reader->err, EINVAL, "%s: %s: digest mismatch, content is sha256:%s",
				     reader->source, path, actual);
	}
	return 0;
}

static bool string_member_is(const struct json_value *object, const char *name, const char *expected)
{
	struct json_value value;
	char *text;
	bool match;

	if (json__member(object, name, &value) < 0 || json__string(&value, &text) < 0)
		return false;
	match = strcmp(text, expected) == 0;
	free(text);
	return match;
}

/* Pick the first linux/amd64 manifest of an index, else the first one without a platform. */
static int choose_manifest(struct image_reader *reader, const char *file,
			   const struct json_value *index, struct json_value *chosen)
{
	struct json_value manifests, key, descriptor, platform;
	const char *cursor = NULL;
	bool have_fallback = false;

	if (json__member(index, "manifests", &manifests) < 0 || *manifests.start != '[')
		return sm_error__set(reader->err, EINVAL, "%s: %s: \"manifests\" missing or not an array",
				     reader->source, file);
	while (json__next(&manifests, &cursor, &key, &descriptor)) {
		if (*descriptor.start != '{')
			return sm_error__set(reader->err, EINVAL, "%s: %s: invalid manifest descriptor",
					     reader->source, file);
		if (json__member(&descriptor, "platform", &platform) < 0) {
			if (!have_fallback)
				*chosen = descriptor;
			have_fallback = true;
			continue;
		}
		if (string_member_is(&platform, "os", "linux") &&
		    string_member_is(&platform, "architecture", "amd64")) {
			*chosen = descriptor;
			return 0;
		}
	}
	if (have_fallback)
		return 0;
	return sm_error__set(reader->err, ENOENT, "%s: %s: no manifest for linux/amd64",
			     reader->source, file);
}

static bool is_index(const struct json_value *descriptor, const struct json_value *blob)
{
	return string_member_is(descriptor, "mediaType", MEDIA_TYPE_OCI_INDEX) ||
	       string_member_is(descriptor, "mediaType", MEDIA_TYPE_DOCKER_LIST) ||
	       string_member_is(blob, "mediaType", MEDIA_TYPE_OCI_INDEX) ||
	       string_member_is(blob, "mediaType", MEDIA_TYPE_DOCKER_LIST) ||
	       (json__member(blob, "manifests", &(struct json_value){ 0 }) == 0 &&
		json__member(blob, "layers", &(struct json_value){ 0 }) < 0);
}

static int read_config(struct image_reader *reader, const char *file,
		       const struct json_value *root, struct oci_image *image)
{
	struct json_value config;
	int ret;

	/* An image without a "config" section runs with the defaults of the runtime. */
	if (json__member(root, "config", &config) < 0)
		config = (struct json_value){ empty_object, empty_object + 2 };
	if (*config.start != '{')
		return sm_error__set(reader->err, EINVAL, "%s: %s: \"config\" is not an object",
				     reader->source, file);
	ret = get_string_array(reader, file, &config, "Entrypoint", &image->entrypoint, NULL);
	if (ret == 0)
		ret = get_string_array(reader, file, &config, "Cmd", &image->cmd, NULL);
	if (ret == 0)
		ret = get_string_array(reader, file, &config, "Env", &image->env, NULL);
	if (ret == 0)
		ret = get_string(reader, file, &config, "WorkingDir", &image->working_dir);
	if (ret == -ENOENT)
		ret = (image->working_dir = strdup("")) ? 0 : -ENOMEM;
	if (ret == 0)
		ret = get_string(reader, file, &config, "User", &image->user);
	if (ret == -ENOENT)
		ret = (image->user = strdup("")) ? 0 : -ENOMEM;
	if (ret == -ENOMEM)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
	return ret;
}

/* Fill image->layers with the blob paths of an OCI manifest's "layers" (names inside the image). */
static int read_oci_layer_names(struct image_reader *reader, const char *file,
				const struct json_value *manifest, struct oci_image *image)
{
	struct json_value layers, key, descriptor;
	const char *cursor = NULL;
	size_t count = 0;

	if (json__member(manifest, "layers", &layers) < 0 || *layers.start != '[')
		return sm_error__set(reader->err, EINVAL, "%s: %s: \"layers\" missing or not an array",
				     reader->source, file);
	while (json__next(&layers, &cursor, &key, &descriptor))
		count++;
	image->layers = calloc(count + 1, sizeof(*image->layers));
	if (image->layers == NULL)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);

	cursor = NULL;
	while (json__next(&layers, &cursor, &key, &descriptor)) {
		char *digest = NULL;
		char path[80];
		char hex[65];
		int ret = get_string(reader, file, &descriptor, "digest", &digest);

		if (ret == -ENOENT)
			ret = sm_error__set(reader->err, EINVAL, "%s: %s: layer %zu without a digest",
					    reader->source, file, image->layer_count);
		if (ret == 0)
			ret = blob_path(reader, file, digest, path, hex);
		free(digest);
		if (ret < 0)
			return ret;
		image->layers[image->layer_count] = strdup(path);
		if (image->layers[image->layer_count] == NULL)
			return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
		image->layer_count++;
	}
	return 0;
}

static int read_oci(struct image_reader *reader, struct oci_image *image)
{
	struct buffer files[MAX_INDEX_DEPTH + 3] = { 0 };
	struct json_value root, descriptor, config;
	const char *file = "index.json";
	size_t used = 0;
	int ret;

	ret = read_json(reader, "oci-layout", '{', &files[used++], &root);
	if (ret == 0 && !string_member_is(&root, "imageLayoutVersion", "1.0.0"))
		ret = sm_error__set(reader->err, EINVAL,
				    "%s: oci-layout: imageLayoutVersion is not 1.0.0", reader->source);
	if (ret == 0)
		ret = read_json(reader, "index.json", '{', &files[used++], &root);

	/* An index may point to further indexes, one per platform or tag. */
	for (int depth = 0; ret == 0; depth++) {
		ret = choose_manifest(reader, file, &root, &descriptor);
		if (ret == 0)
			ret = read_blob(reader, file, &descriptor, &files[used++], &root);
		if (ret < 0 || !is_index(&descriptor, &root))
			break;
		file = "nested index";
		if (depth == MAX_INDEX_DEPTH)
			ret = sm_error__set(reader->err, ELOOP, "%s: image indexes nested too deeply",
					    reader->source);
	}
	if (ret < 0)
		goto out;

	sha256__hex(files[used - 1].data, files[used - 1].size, image->manifest_digest);
	ret = read_oci_layer_names(reader, "manifest", &root, image);
	if (ret == 0 && json__member(&root, "config", &config) < 0)
		ret = sm_error__set(reader->err, EINVAL, "%s: manifest: \"config\" missing",
				    reader->source);
	if (ret == 0)
		ret = read_blob(reader, "manifest", &config, &files[used++], &root);
	if (ret == 0)
		ret = read_config(reader, "config", &root, image);
out:
	for (size_t i = 0; i < used; i++)
		free(files[i].data);
	return ret;
}

static int read_docker(struct image_reader *reader, struct oci_image *image)
{
	struct buffer manifest = { 0 };
	struct buffer config_file = { 0 };
	struct json_value root, key, entry, config;
	const char *cursor = NULL;
	char *config_path = NULL;
	int ret;

	ret = read_json(reader, "manifest.json", '[', &manifest, &root);
	if (ret < 0)
		return ret;
	/* NOTE: only the first image of a multi-image docker-archive is read. */
	if (!json__next(&root, &cursor, &key, &entry) || *entry.start != '{') {
		ret = sm_error__set(reader->err, EINVAL, "%s: manifest.json lists no image",
				    reader->source);
		goto out;
	}
	ret = get_string(reader, "manifest.json", &entry, "Config", &config_path);
	if (ret == -ENOENT)
		ret = sm_error__set(reader->err, EINVAL, "%s: manifest.json: \"Config\" missing",
				    reader->source);
	if (ret == 0)
		ret = get_string_array(reader, "manifest.json", &entry, "Layers", &image->layers,
				       &image->layer_count);
	for (size_t i = 0; ret == 0 && i < image->layer_count; i++)
		if (!is_safe_member_path(image->layers[i]))
			ret = sm_error__set(reader->err, EINVAL, "%s: manifest.json: invalid layer path %s",
					    reader->source, image->layers[i]);
	if (ret == 0)
		ret = read_json(reader, config_path, '{', &config_file, &config);
	if (ret == 0)
		ret = read_config(reader, config_path, &config, image);
	if (ret == 0) {
		/*
		 * manifest.json names files, not digests, so the key also covers the
		 * config, whose rootfs.diff_ids name the content of every layer.
		 */
		struct sha256 hash;

		sha256__init(&hash);
		sha256__update(&hash, manifest.data, manifest.size);
		sha256__update(&hash, config_file.data, config_file.size);
		sha256__final(&hash, image->manifest_digest);
	}
out:
	free(config_path);
	free(config_file.data);
	free(manifest.data);
	return ret;
}

static int extract_layer_data(struct image_reader *reader, struct archive *archive,
			      const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ret;

	if (fd < 0)
		return sm_error__set(reader->err, errno, "%s: cannot create: %s", path, strerror(errno));
	ret = archive_read_data_into_fd(archive, fd);
	if (close(fd) < 0 && ret == ARCHIVE_OK)
		ret = ARCHIVE_FATAL;
	if (ret != ARCHIVE_OK)
		return sm_error__set(reader->err, EIO, "%s: extracting %s failed: %s", reader->source,
				     path, archive_error_string(archive));
	return 0;
}

/* Check that the file at `path` has the sha256 digest in the blob name `blob`. */
static int check_layer_digest(struct image_reader *reader, const char *blob, const char *path)
{
	static const char prefix[] = "blobs/sha256/";
	char buffer[64 * 1024];
	char actual[65];
	struct sha256 ctx;
	ssize_t got;
	int fd;

	if (strncmp(blob, prefix, strlen(prefix)) != 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sm_error__set(reader->err, errno, "%s: cannot open: %s", path, strerror(errno));
	sha256__init(&ctx);
	while ((got = read(fd, buffer, sizeof(buffer))) > 0)
		sha256__update(&ctx, buffer, (size_t)got);
	close(fd);
	if (got < 0)
		return sm_error__set(reader->err, EIO, "%s: read failed", path);
	sha256__final(&ctx, actual);
	if (strcmp(actual, blob + strlen(prefix)) != 0)
		return sm_error__set(reader->err, EINVAL, "%s: layer %s: digest mismatch, content is sha256:%s",
				     reader->source, blob, actual);
	return 0;
}

/* Join a link target to the directory of `name` and remove "." and "..", or return NULL when it leaves the archive. */
static char *resolve_member_link(const char *name, const char *target, bool relative)
{
	char *joined;
	char *result;
	char *cursor;
	char *component;
	size_t length = 0;
	const char *slash = strrchr(name, '/');
	int dir_length = relative && slash ? (int)(slash - name) : 0;

	if (target[0] == '/' ||
	    asprintf(&joined, "%.*s/%s", dir_length, name, member_name(target)) < 0)
		return NULL;
	result = calloc(strlen(joined) + 1, 1);
	if (result == NULL) {
		free(joined);
		return NULL;
	}
	cursor = joined;
	while ((component = strsep(&cursor, "/")) != NULL) {
		if (component[0] == '\0' || strcmp(component, ".") == 0)
			continue;
		if (strcmp(component, "..") == 0) {
			char *last = strrchr(result, '/');

			if (length == 0) {
				free(result);
				result = NULL;
				break;
			}
			length = last ? (size_t)(last - result) : 0;
			result[length] = '\0';
			continue;
		}
		if (length > 0)
			result[length++] = '/';
		strcpy(result + length, component);
		length += strlen(component);
	}
	free(joined);
	return result;
}

/*
 * Extract the regular-file members named in image->layers into `paths`. A layer
 * stored as a symlink or hard link entry is renamed to its target and
 * `*renamed` is set, so that another pass can find the target.
 */
static int extract_layers_pass(struct image_reader *reader, const char *work_dir,
			       struct oci_image *image, char **paths, bool *renamed)
{
	struct archive *archive = open_tar(reader);
	struct archive_entry *entry;
	int ret = 0;

	if (archive == NULL)
		return -reader->err->code;
	while (ret == 0 && archive_read_next_header(archive, &entry) == ARCHIVE_OK) {
		const char *name = member_name(archive_entry_pathname(entry));
		const char *hard_link = archive_entry_hardlink(entry);
		bool is_symlink = archive_entry_filetype(entry) == AE_IFLNK;
		size_t first = SIZE_MAX;

		if (archive_entry_filetype(entry) != AE_IFREG && !is_symlink)
			continue;
		/* The same blob may be listed more than once, so every match gets a copy. */
		for (size_t i = 0; ret == 0 && i < image->layer_count; i++) {
			if (paths[i] != NULL || strcmp(image->layers[i], name) != 0)
				continue;
			if (is_symlink || hard_link != NULL) {
				char *target = resolve_member_link(name, is_symlink ?
						archive_entry_symlink(entry) : hard_link, is_symlink);

				if (target == NULL) {
					ret = sm_error__set(reader->err, EINVAL,
							    "%s: layer %s links outside the archive",
							    reader->source, name);
					break;
				}
				free(image->layers[i]);
				image->layers[i] = target;
				*renamed = true;
			} else if (asprintf(&paths[i], "%s/layer-%03zu", work_dir, i) < 0) {
				paths[i] = NULL;
				ret = sm_error__set(reader->err, ENOMEM, "%s: out of memory",
						    reader->source);
			} else if (first == SIZE_MAX) {
				first = i;
				ret = extract_layer_data(reader, archive, paths[i]);
			} else if (link(paths[first], paths[i]) < 0) {
				ret = sm_error__set(reader->err, errno, "%s: cannot link: %s", paths[i],
						    strerror(errno));
			}
		}
	}
	archive_read_free(archive);
	return ret;
}

/* Copy the layers named in image->layers out of the tarball into work_dir, replacing the names. */
static int extract_layers(struct image_reader *reader, const char *work_dir, struct oci_image *image)
{
	char **paths = calloc(image->layer_count + 1, sizeof(*paths));
	bool renamed = true;
	int ret = 0;

	if (paths == NULL)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
	/* Older `docker save` versions store a repeated layer as a link to the first copy. */
	for (int pass = 0; ret == 0 && renamed && pass < 4; pass++) {
		renamed = false;
		ret = extract_layers_pass(reader, work_dir, image, paths, &renamed);
	}

	for (size_t i = 0; ret == 0 && i < image->layer_count; i++) {
		if (paths[i] == NULL)
			ret = sm_error__set(reader->err, ENOENT, "%s: layer %s not found in the archive",
					    reader->source, image->layers[i]);
		else
			ret = check_layer_digest(reader, image->layers[i], paths[i]);
	}
	if (ret == 0) {
		free_strings(image->layers);
		image->layers = paths;
	} else {
		for (size_t i = 0; i < image->layer_count; i++)
			free(paths[i]);
		free(paths);
	}
	return ret;
}

/* Make the layer names of a layout directory into host paths and check that each exists. */
static int resolve_layout_layers(struct image_reader *reader, struct oci_image *image)
{
	int ret;

	for (size_t i = 0; i < image->layer_count; i++) {
		char *path;
		struct stat st;

		if (asprintf(&path, "%s/%s", reader->source, image->layers[i]) < 0)
			return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			sm_error__set(reader->err, ENOENT, "%s: layer blob missing", path);
			free(path);
			return -ENOENT;
		}
		ret = check_layer_digest(reader, image->layers[i], path);
		free(image->layers[i]);
		image->layers[i] = path;
		if (ret < 0)
			return ret;
	}
	return 0;
}

const char *oci_image__format_name(enum oci_image_format format)
{
	switch (format) {
	case OCI_IMAGE_LAYOUT:
		return "oci";
	case OCI_IMAGE_ARCHIVE:
		return "oci-archive";
	case OCI_IMAGE_DOCKER_ARCHIVE:
		return "docker-archive";
	}
	return "unknown";
}

static int detect_tar(struct image_reader *reader, enum oci_image_format *format)
{
	struct archive *archive = open_tar(reader);
	struct archive_entry *entry;
	bool layout = false, index = false, docker_manifest = false;
	int status;

	if (archive == NULL)
		return -reader->err->code;
	while ((status = archive_read_next_header(archive, &entry)) == ARCHIVE_OK) {
		const char *name = member_name(archive_entry_pathname(entry));

		layout |= strcmp(name, "oci-layout") == 0;
		index |= strcmp(name, "index.json") == 0;
		docker_manifest |= strcmp(name, "manifest.json") == 0;
	}
	archive_read_free(archive);
	if (status != ARCHIVE_EOF)
		return sm_error__set(reader->err, EINVAL, "%s: invalid tar file", reader->source);

	/* A tar with both layouts, as newer `docker save` versions write, is read as oci-archive. */
	if (layout && index)
		*format = OCI_IMAGE_ARCHIVE;
	else if (docker_manifest)
		*format = OCI_IMAGE_DOCKER_ARCHIVE;
	else
		return sm_error__set(reader->err, EINVAL,
				     "%s: tar file without oci-layout and index.json or manifest.json",
				     reader->source);
	return 0;
}

int oci_image__detect(const char *source, enum oci_image_format *format, struct sm_error *err)
{
	struct image_reader reader = { .source = source, .err = err };
	char path[4096];
	struct stat st;

	if (stat(source, &st) < 0)
		return sm_error__set(err, errno, "%s: cannot open image: %s", source, strerror(errno));
	if (S_ISREG(st.st_mode))
		return detect_tar(&reader, format);
	if (!S_ISDIR(st.st_mode))
		return sm_error__set(err, EINVAL, "%s: not a directory or a tar file", source);

	snprintf(path, sizeof(path), "%s/oci-layout", source);
	if (access(path, R_OK) == 0) {
		snprintf(path, sizeof(path), "%s/index.json", source);
		if (access(path, R_OK) == 0) {
			*format = OCI_IMAGE_LAYOUT;
			return 0;
		}
	}
	return sm_error__set(err, EINVAL, "%s: directory without oci-layout and index.json", source);
}

/* Replace the layer list read from the manifest with an empty one. */
static int clear_layers(struct image_reader *reader, struct oci_image *image)
{
	free_strings(image->layers);
	image->layer_count = 0;
	image->layers = calloc(1, sizeof(*image->layers));
	if (image->layers == NULL)
		return sm_error__set(reader->err, ENOMEM, "%s: out of memory", reader->source);
	return 0;
}

/*
 * Read `source` into `image` as oci_image__open does. Without `with_layers`,
 * the layers are neither resolved nor extracted and the layer list is empty.
 */
static int open_image(const char *source, const char *work_dir, bool with_layers,
		      struct oci_image *image, struct sm_error *err)
{
	struct image_reader reader = { .source = source, .err = err };
	int ret;

	memset(image, 0, sizeof(*image));
	ret = oci_image__detect(source, &reader.format, err);
	if (ret < 0)
		return ret;
	image->format = reader.format;
	if (with_layers && reader.format != OCI_IMAGE_LAYOUT && work_dir == NULL)
		return sm_error__set(err, EINVAL, "%s: a work directory is needed to extract layers",
				     source);

	if (reader.format == OCI_IMAGE_DOCKER_ARCHIVE)
		ret = read_docker(&reader, image);
	else
		ret = read_oci(&reader, image);
	if (ret == 0 && !with_layers)
		ret = clear_layers(&reader, image);
	else if (ret == 0 && reader.format == OCI_IMAGE_LAYOUT)
		ret = resolve_layout_layers(&reader, image);
	else if (ret == 0)
		ret = extract_layers(&reader, work_dir, image);
	if (ret < 0)
		oci_image__release(image);
	return ret;
}

int oci_image__open(const char *source, const char *work_dir, struct oci_image *image,
		    struct sm_error *err)
{
	return open_image(source, work_dir, true, image, err);
}

int oci_image__open_config(const char *source, struct oci_image *image, struct sm_error *err)
{
	return open_image(source, NULL, false, image, err);
}

void oci_image__release(struct oci_image *image)
{
	free_strings(image->entrypoint);
	free_strings(image->cmd);
	free_strings(image->env);
	free_strings(image->layers);
	free(image->working_dir);
	free(image->user);
	memset(image, 0, sizeof(*image));
}
