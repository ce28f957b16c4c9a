/* SPDX-License-Identifier: Apache-2.0 */
/* Image reading for OCI layouts, oci-archive and docker-archive, on images built at run time. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
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

#include "oci_fixtures.h"
#include "oci_image.h"
#include "oci_layers.h"

struct fixture {
	char dir[64];
	char source[128];
	char work[128];
	char root[128];
	struct image_files image;
	char manifest_hex[65];
};

static const char config_json[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
	"\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo \\\"hi\\\"\"],"
	"\"Env\":[\"PATH=/usr/bin:/bin\",\"GREETING=caf\\u00e9 \\ud83d\\ude00\"],"
	"\"WorkingDir\":\"/srv\",\"User\":\"1000:1000\"},"
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* Build a layer tar in memory with one file `name` containing `content`. */
static void *make_file_layer(const char *name, const char *content, size_t *size)
{
	const struct layer_entry entry = { .path = name, .type = AE_IFREG, .data = content };

	return make_layer(FILTER_NONE, &entry, 1, size);
}

/* Fill `fixture` with an OCI layout: an index with an arm64 and an amd64 manifest. */
static void build_oci_layout(struct fixture *fixture, const char *config, bool with_amd64)
{
	char config_digest[72], layer1[72], layer2[72], manifest_digest[72];
	char manifest[2048], index[2048];
	size_t size1, size2;
	void *data1 = make_file_layer("etc/first", "one", &size1);
	void *data2 = make_file_layer("etc/second", "two", &size2);
	const char *layout = "{\"imageLayoutVersion\": \"1.0.0\"}";

	add_file(&fixture->image, "oci-layout", layout, strlen(layout));
	add_blob(&fixture->image, config, strlen(config), config_digest);
	add_blob(&fixture->image, data1, size1, layer1);
	add_blob(&fixture->image, data2, size2, layer2);
	free(data1);
	free(data2);

	snprintf(manifest, sizeof(manifest),
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":["
		 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu},"
		 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
		 config_digest, strlen(config), layer1, size1, layer2, size2);
	add_blob(&fixture->image, manifest, strlen(manifest), manifest_digest);
	memcpy(fixture->manifest_hex, manifest_digest + 7, 65);

	/* The arm64 manifest's blob does not exist, so reading it would fail the test. */
	snprintf(index, sizeof(index),
		 "{\n  \"schemaVersion\": 2,\n  \"manifests\": [\n"
		 "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": "
		 "\"sha256:%064d\", \"size\": 1, \"platform\": {\"architecture\": \"arm64\", \"os\": \"linux\"}},\n"
		 "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"%s\", "
		 "\"size\": %zu, \"platform\": {\"architecture\": \"%s\", \"os\": \"linux\"}}\n  ]\n}\n",
		 0, manifest_digest, strlen(manifest), with_amd64 ? "amd64" : "s390x");
	add_file(&fixture->image, "index.json", index, strlen(index));
}

static void build_docker_archive(struct fixture *fixture)
{
	char config_hex[65];
	struct sha256 key;
	char name[128], manifest[1024];
	size_t size1, size2;
	void *data1 = make_file_layer("etc/first", "one", &size1);
	void *data2 = make_file_layer("etc/second", "two", &size2);
	const char *repositories = "{\"example\":{\"latest\":\"abc\"}}";

	sha256__hex(config_json, strlen(config_json), config_hex);
	snprintf(name, sizeof(name), "%s.json", config_hex);
	add_file(&fixture->image, name, config_json, strlen(config_json));
	add_file(&fixture->image, "aaaa/layer.tar", data1, size1);
	add_file(&fixture->image, "bbbb/layer.tar", data2, size2);
	add_file(&fixture->image, "repositories", repositories, strlen(repositories));
	free(data1);
	free(data2);
	snprintf(manifest, sizeof(manifest),
		 "[{\"Config\":\"%s.json\",\"RepoTags\":[\"example:latest\"],"
		 "\"Layers\":[\"aaaa/layer.tar\",\"bbbb/layer.tar\"]}]",
		 config_hex);
	add_file(&fixture->image, "manifest.json", manifest, strlen(manifest));
	/* The key of a docker-archive covers manifest.json and the config. */
	sha256__init(&key);
	sha256__update(&key, manifest, strlen(manifest));
	sha256__update(&key, config_json, strlen(config_json));
	sha256__final(&key, fixture->manifest_hex);
}

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));

	assert_non_null(fixture);
	strcpy(fixture->dir, "/tmp/smcore-oci-image-XXXXXX");
	assert_non_null(mkdtemp(fixture->dir));
	snprintf(fixture->source, sizeof(fixture->source), "%s/image", fixture->dir);
	snprintf(fixture->work, sizeof(fixture->work), "%s/work", fixture->dir);
	snprintf(fixture->root, sizeof(fixture->root), "%s/root", fixture->dir);
	assert_int_equal(mkdir(fixture->work, 0755), 0);
	assert_int_equal(mkdir(fixture->root, 0755), 0);
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;

	free_image_files(&fixture->image);
	remove_tree(fixture->dir);
	free(fixture);
	return 0;
}

/* Check the config fields and apply both layers to check their order and content. */
static void assert_image(struct fixture *fixture, const struct oci_image *image)
{
	struct sm_error err = { 0 };

	assert_string_equal(image->manifest_digest, fixture->manifest_hex);
	assert_string_equal(image->entrypoint[0], "/bin/sh");
	assert_string_equal(image->entrypoint[1], "-c");
	assert_null(image->entrypoint[2]);
	assert_string_equal(image->cmd[0], "echo \"hi\"");
	assert_null(image->cmd[1]);
	assert_string_equal(image->env[0], "PATH=/usr/bin:/bin");
	assert_string_equal(image->env[1], "GREETING=caf\xc3\xa9 \xf0\x9f\x98\x80");
	assert_null(image->env[2]);
	assert_string_equal(image->working_dir, "/srv");
	assert_string_equal(image->user, "1000:1000");
	assert_int_equal(image->layer_count, 2);
	assert_null(image->layers[2]);

	assert_int_equal(oci_layers__apply(image->layers[0], fixture->root, "0", &err), 0);
	assert_int_equal(oci_layers__apply(image->layers[1], fixture->root, "1", &err), 0);
	assert_file_contains(fixture->root, "etc/first", "one");
	assert_file_contains(fixture->root, "etc/second", "two");
}

static void oci_layout_read(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;
	enum oci_image_format format;

	build_oci_layout(fixture, config_json, true);
	write_directory(&fixture->image, fixture->source);
	assert_int_equal(oci_image__detect(fixture->source, &format, &err), 0);
	assert_int_equal(format, OCI_IMAGE_LAYOUT);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), 0);
	assert_int_equal(image.format, OCI_IMAGE_LAYOUT);
	assert_non_null(strstr(image.layers[0], fixture->source));
	assert_image(fixture, &image);
	oci_image__release(&image);
}

static void oci_archive_read(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_oci_layout(fixture, config_json, true);
	write_tar(&fixture->image, fixture->source, "./");
	assert_int_equal(oci_image__open(fixture->source, fixture->work, &image, &err), 0);
	assert_int_equal(image.format, OCI_IMAGE_ARCHIVE);
	assert_non_null(strstr(image.layers[0], fixture->work));
	assert_image(fixture, &image);
	oci_image__release(&image);
}

static void docker_archive_read(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_docker_archive(fixture);
	write_tar(&fixture->image, fixture->source, "");
	assert_int_equal(oci_image__open(fixture->source, fixture->work, &image, &err), 0);
	assert_int_equal(image.format, OCI_IMAGE_DOCKER_ARCHIVE);
	assert_string_equal(oci_image__format_name(image.format), "docker-archive");
	assert_image(fixture, &image);
	oci_image__release(&image);
}

/* Write a docker-archive whose second layer is a symlink, listed before its target, to the first. */
static void write_docker_archive_with_link(struct fixture *fixture, const char *link_target)
{
	struct archive *archive = archive_write_new();
	struct archive_entry *entry = archive_entry_new();

	archive_write_set_format_pax_restricted(archive);
	assert_int_equal(archive_write_open_filename(archive, fixture->source), ARCHIVE_OK);
	archive_entry_set_pathname(entry, "bbbb/layer.tar");
	archive_entry_set_filetype(entry, AE_IFLNK);
	archive_entry_set_perm(entry, 0777);
	archive_entry_set_symlink(entry, link_target);
	assert_int_equal(archive_write_header(archive, entry), ARCHIVE_OK);
	for (size_t i = 0; i < fixture->image.count; i++) {
		const struct image_file *file = &fixture->image.files[i];

		if (strcmp(file->name, "bbbb/layer.tar") != 0)
			write_tar_file(archive, entry, file->name, file);
	}
	assert_int_equal(archive_write_close(archive), ARCHIVE_OK);
	archive_write_free(archive);
	archive_entry_free(entry);
}

static void docker_symlinked_layer_followed(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_docker_archive(fixture);
	write_docker_archive_with_link(fixture, "../aaaa/layer.tar");
	assert_int_equal(oci_image__open(fixture->source, fixture->work, &image, &err), 0);
	assert_int_equal(image.layer_count, 2);
	assert_int_equal(oci_layers__apply(image.layers[1], fixture->root, "1", &err), 0);
	assert_file_contains(fixture->root, "etc/first", "one");
	oci_image__release(&image);
}

static void docker_escaping_layer_link_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_docker_archive(fixture);
	write_docker_archive_with_link(fixture, "../../etc/passwd");
	assert_int_equal(oci_image__open(fixture->source, fixture->work, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "bbbb/layer.tar links outside the archive"));
}

static void config_without_fields(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_oci_layout(fixture, "{\"config\":{\"Env\":null}}", true);
	write_directory(&fixture->image, fixture->source);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), 0);
	assert_null(image.entrypoint[0]);
	assert_null(image.cmd[0]);
	assert_null(image.env[0]);
	assert_string_equal(image.working_dir, "");
	assert_string_equal(image.user, "");
	oci_image__release(&image);
}

static void no_amd64_manifest_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_oci_layout(fixture, config_json, false);
	write_directory(&fixture->image, fixture->source);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -ENOENT);
	assert_non_null(strstr(err.message, "linux/amd64"));
	assert_non_null(strstr(err.message, "index.json"));
}

static void config_digest_mismatch_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_oci_layout(fixture, config_json, true);
	/* The second file is the config blob; changing one byte breaks its digest. */
	fixture->image.files[1].data[2] = 'X';
	write_directory(&fixture->image, fixture->source);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "digest mismatch"));
	assert_non_null(strstr(err.message, fixture->image.files[1].name));
}

static void layer_digest_mismatch_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;

	build_oci_layout(fixture, config_json, true);
	/* The fourth file is the second layer blob. */
	fixture->image.files[3].data[0] = 'X';
	write_directory(&fixture->image, fixture->source);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "digest mismatch"));
	assert_non_null(strstr(err.message, fixture->image.files[3].name));

	sm_error__clear(&err);
	snprintf(fixture->source, sizeof(fixture->source), "%s/image.tar", fixture->dir);
	write_tar(&fixture->image, fixture->source, "");
	assert_int_equal(oci_image__open(fixture->source, fixture->work, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "digest mismatch"));
	assert_non_null(strstr(err.message, fixture->image.files[3].name));
}

static void invalid_json_rejected(void **state)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
		{ "{\"manifests\": [],}", "not a valid JSON object" },
		{ "{\"manifests\": [1 2]}", "not a valid JSON object" },
		{ "{\"manifests\": [], \"a\": \"\\x\"}", "not a valid JSON object" },
		{ "{\"manifests\": [], \"a\": \"\\u12\"}", "not a valid JSON object" },
		{ "{\"manifests\": [], \"a\": 01}", "not a valid JSON object" },
		{ "{\"manifests\": [], \"a\": tru}", "not a valid JSON object" },
		{ "{\"manifests\": [], \"a\": \"line\nbreak\"}", "not a valid JSON object" },
		{ "{\"manifests\": []} {}", "not a valid JSON object" },
		{ "{\"manifests\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
		  "not a valid JSON object" },
		{ "[]", "not a valid JSON object" },
		{ "{\"manifests\"", "not a valid JSON object" },
		{ "", "not a valid JSON object" },
		{ "{\"manifests\": {}}", "\"manifests\" missing or not an array" },
		{ "{\"manifests\": [{\"digest\": \"\\udc00\"}]}", "\"digest\" is not a valid string" },
		{ "{\"manifests\": [{\"digest\": \"a\\u0000b\"}]}", "\"digest\" is not a valid string" },
		{ "{\"manifests\": [{\"digest\": 5}]}", "\"digest\" is not a valid string" },
		{ "{\"manifests\": [{\"size\": 5}]}", "descriptor without a digest" },
		{ "{\"manifests\": [7]}", "invalid manifest descriptor" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture *fixture = *state;
		struct sm_error err = { 0 };
		struct oci_image image;
		char path[256];
		FILE *file;

		build_oci_layout(fixture, config_json, true);
		write_directory(&fixture->image, fixture->source);
		snprintf(path, sizeof(path), "%s/index.json", fixture->source);
		file = fopen(path, "w");
		assert_non_null(file);
		fputs(cases[i].text, file);
		fclose(file);
		assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -EINVAL);
		print_message("case %zu: %s\n", i, err.message);
		assert_non_null(strstr(err.message, "index.json"));
		assert_non_null(strstr(err.message, cases[i].message));

		teardown(state);
		setup(state);
	}
}

static void nested_index_followed(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;
	struct image_file *index;
	char inner_digest[72];
	char outer[512];

	build_oci_layout(fixture, config_json, true);
	index = &fixture->image.files[fixture->image.count - 1];
	assert_string_equal(index->name, "index.json");
	add_blob(&fixture->image, index->data, index->size, inner_digest);
	snprintf(outer, sizeof(outer),
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		 "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}",
		 inner_digest, index->size);
	free(index->data);
	index->data = strdup(outer);
	index->size = strlen(outer);
	write_directory(&fixture->image, fixture->source);

	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), 0);
	assert_image(fixture, &image);
	oci_image__release(&image);
}

static void descriptor_size_mismatch_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;
	char path[256];
	FILE *file;

	build_oci_layout(fixture, config_json, true);
	write_directory(&fixture->image, fixture->source);
	snprintf(path, sizeof(path), "%s/index.json", fixture->source);
	file = fopen(path, "w");
	assert_non_null(file);
	fprintf(file, "{\"manifests\":[{\"digest\":\"sha256:%s\",\"size\":3}]}", fixture->manifest_hex);
	fclose(file);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "size differs"));
	assert_non_null(strstr(err.message, fixture->manifest_hex));
}

static void bad_digest_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	struct oci_image image;
	char path[256];
	FILE *file;

	build_oci_layout(fixture, config_json, true);
	write_directory(&fixture->image, fixture->source);
	snprintf(path, sizeof(path), "%s/index.json", fixture->source);
	file = fopen(path, "w");
	assert_non_null(file);
	fputs("{\"manifests\":[{\"digest\":\"sha256:../../../etc/passwd\"}]}", file);
	fclose(file);
	assert_int_equal(oci_image__open(fixture->source, NULL, &image, &err), -EINVAL);
	assert_non_null(strstr(err.message, "unsupported digest"));
}

static void unknown_source_rejected(void **state)
{
	struct fixture *fixture = *state;
	struct sm_error err = { 0 };
	enum oci_image_format format;
	struct oci_image image;

	assert_int_equal(oci_image__detect(fixture->work, &format, &err), -EINVAL);
	assert_non_null(strstr(err.message, fixture->work));
	assert_int_equal(oci_image__open("/nonexistent/image", NULL, &image, &err), -ENOENT);
	assert_non_null(strstr(err.message, "/nonexistent/image"));

	add_file(&fixture->image, "hello.txt", "hi", 2);
	write_tar(&fixture->image, fixture->source, "");
	assert_int_equal(oci_image__detect(fixture->source, &format, &err), -EINVAL);
	assert_non_null(strstr(err.message, "manifest.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(oci_layout_read, setup, teardown),
		cmocka_unit_test_setup_teardown(oci_archive_read, setup, teardown),
		cmocka_unit_test_setup_teardown(docker_archive_read, setup, teardown),
		cmocka_unit_test_setup_teardown(docker_symlinked_layer_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(docker_escaping_layer_link_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(config_without_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(no_amd64_manifest_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(config_digest_mismatch_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(layer_digest_mismatch_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(invalid_json_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(nested_index_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(descriptor_size_mismatch_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_digest_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_source_rejected, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
