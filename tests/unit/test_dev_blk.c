/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dev-blk plugin, loaded from the build tree, against a fake core: the
 * fake queue hands out hand-built descriptor chains whose buffers point into
 * test memory, and records what the device pushes back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin_loader.h"

#define PLUGIN_PATH TEST_BINARY_DIR "/../../lib/smcore/plugins/dev-blk.so"

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define STATUS_UNTOUCHED 0xee

#define F_SEG_MAX (1ull << 2)
#define F_RO (1ull << 5)
#define F_FLUSH (1ull << 9)
#define F_DISCARD (1ull << 13)
#define F_WRITE_ZEROES (1ull << 14)

#define SECTOR 512
#define IMAGE_SECTORS 64
#define MAX_CHAINS 16
#define MAX_CHAIN_IOV 8
#define WAIT_SECONDS 5

struct fake_chain {
	uint16_t head;
	uint32_t count;
	struct smcore_iovec iov[MAX_CHAIN_IOV];
};

/* The fake core: config values, recorded messages and one virtqueue. */
struct smcore_ctx {
	const char *keys[8];
	const char *values[8];
	size_t key_count;
	char error_key[64];
	char error_message[512];
	int error_count;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	char log_message[512];
	int log_count;
	struct fake_chain chains[MAX_CHAINS];
	size_t queued;
	size_t popped;
	int pop_calls;
	uint32_t last_max_iov;
	bool broken;
	uint16_t pushed_head[MAX_CHAINS];
	uint32_t pushed_written[MAX_CHAINS];
	size_t push_count;
	int bad_pushes;
};

static struct smcore_ctx fake;
static struct sm_plugin *plugin;
static const struct smcore_device_ops *ops;
static char image_path[512];

static void fake_log(struct smcore_ctx *ctx, enum smcore_log_level level, const char *fmt, ...)
{
	va_list args;

	pthread_mutex_lock(&ctx->lock);
	va_start(args, fmt);
	vsnprintf(ctx->log_message, sizeof(ctx->log_message), fmt, args);
	va_end(args);
	ctx->log_count++;
	pthread_mutex_unlock(&ctx->lock);
}

static int fake_error(struct smcore_ctx *ctx, int err, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(ctx->error_message, sizeof(ctx->error_message), fmt, args);
	va_end(args);
	ctx->error_count++;
	return -err;
}

static const char *fake_config_get(struct smcore_ctx *ctx, const char *key)
{
	const char *value = NULL;

	for (size_t i = 0; i < ctx->key_count; i++) {
		if (strcmp(ctx->keys[i], key) == 0)
			value = ctx->values[i];
	}
	return value;
}

static int fake_config_error(struct smcore_ctx *ctx, const char *key, const char *fmt, ...)
{
	va_list args;

	snprintf(ctx->error_key, sizeof(ctx->error_key), "%s", key);
	va_start(args, fmt);
	vsnprintf(ctx->error_message, sizeof(ctx->error_message), fmt, args);
	va_end(args);
	ctx->error_count++;
	return -EINVAL;
}

static int fake_queue_pop(struct smcore_ctx *ctx, uint16_t queue, struct smcore_chain *chain,
			  struct smcore_iovec *iov, uint32_t max_iov)
{
	const struct fake_chain *next;
	int ret = 1;

	pthread_mutex_lock(&ctx->lock);
	ctx->pop_calls++;
	ctx->last_max_iov = max_iov;
	if (queue != 0 || ctx->broken) {
		ret = -EINVAL;
	} else if (ctx->popped == ctx->queued) {
		ret = 0;
	} else {
		next = &ctx->chains[ctx->popped++];
		if (next->count > max_iov) {
			ret = -EINVAL;
		} else {
			memcpy(iov, next->iov, next->count * sizeof(*iov));
			chain->queue = queue;
			chain->head = next->head;
			chain->count = next->count;
			chain->iov = iov;
		}
	}
	pthread_cond_broadcast(&ctx->changed);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

static int fake_queue_push(struct smcore_ctx *ctx, uint16_t queue, uint16_t head, uint32_t written)
{
	/* This runs on the device's thread, where a cmocka assertion cannot stop the test. */
	pthread_mutex_lock(&ctx->lock);
	if (queue != 0 || ctx->push_count == MAX_CHAINS) {
		ctx->bad_pushes++;
	} else {
		ctx->pushed_head[ctx->push_count] = head;
		ctx->pushed_written[ctx->push_count] = written;
		ctx->push_count++;
	}
	pthread_cond_broadcast(&ctx->changed);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* Values are used as given: the tests pass absolute paths. */
static const char *fake_config_path(struct smcore_ctx *ctx, const char *key)
{
	return fake_config_get(ctx, key);
}

static void fake_config_changed(struct smcore_ctx *ctx)
{
}

static struct smcore_host host = {
	.size = sizeof(struct smcore_host),
	.log = fake_log,
	.error = fake_error,
	.config_get = fake_config_get,
	.config_error = fake_config_error,
	.config_path = fake_config_path,
	.queue_pop = fake_queue_pop,
	.queue_push = fake_queue_push,
	.config_changed = fake_config_changed,
};

/* ---- Fixtures ---------------------------------------------------------- */

static uint8_t pattern_byte(uint64_t offset)
{
	return (uint8_t)(offset * 7 + 3);
}

/*
 * Creates an image of `size` bytes filled with pattern_byte() and stores its
 * path in image_path. TMPDIR=/dev/shm runs the tests on tmpfs, which lacks
 * FALLOC_FL_ZERO_RANGE, so write zeroes falls back to writing zeros.
 */
static void make_image(uint64_t size)
{
	const char *dir = getenv("TMPDIR");
	uint8_t *data = malloc(size ? size : 1);
	int fd;

	assert_non_null(data);
	for (uint64_t i = 0; i < size; i++)
		data[i] = pattern_byte(i);
	snprintf(image_path, sizeof(image_path), "%s/test-dev-blk-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(image_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

static void read_image(uint64_t offset, void *buf, size_t len)
{
	int fd = open(image_path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
	close(fd);
}

static void set_key(const char *key, const char *value)
{
	fake.keys[fake.key_count] = key;
	fake.values[fake.key_count] = value;
	fake.key_count++;
}

static int setup(void **state)
{
	struct sm_error err = { 0 };

	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	pthread_cond_init(&fake.changed, NULL);
	host.size = sizeof(struct smcore_host);
	if (plugin__open(PLUGIN_PATH, &plugin, &err) != 0) {
		print_error("%s\n", err.message);
		return -1;
	}
	ops = &plugin->ops.device;
	make_image(IMAGE_SECTORS * SECTOR);
	return 0;
}

static int teardown(void **state)
{
	unlink(image_path);
	plugin__close(plugin);
	plugin = NULL;
	pthread_cond_destroy(&fake.changed);
	pthread_mutex_destroy(&fake.lock);
	return 0;
}

static struct smcore_device *realize_ok(struct smcore_device_info *info)
{
	struct smcore_device *dev = NULL;
	int ret;

	ret = ops->realize(&host, &fake, &dev, info);
	if (ret != 0)
		fail_msg("realize failed with %d: %s: %s", ret, fake.error_key, fake.error_message);
	assert_non_null(dev);
	return dev;
}

static struct smcore_device *open_disk(const char *readonly)
{
	struct smcore_device_info info = { 0 };

	set_key("path", image_path);
	if (readonly)
		set_key("readonly", readonly);
	return realize_ok(&info);
}

/* Realizes a device that must fail, and checks that config_error named `key` and each fragment. */
static void expect_config_error(const char *key, const char *const *fragments)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev = NULL;

	assert_int_equal(ops->realize(&host, &fake, &dev, &info), -EINVAL);
	assert_int_equal(fake.error_count, 1);
	assert_string_equal(fake.error_key, key);
	for (size_t i = 0; fragments[i]; i++) {
		if (!strstr(fake.error_message, fragments[i]))
			fail_msg("message '%s' lacks '%s'", fake.error_message, fragments[i]);
	}
}

/* ---- Requests ---------------------------------------------------------- */

struct request {
	uint8_t header[16];
	uint8_t status;
};

static void fill_header(struct request *req, uint32_t type, uint64_t sector)
{
	memset(req->header, 0, sizeof(req->header));
	memcpy(req->header, &type, sizeof(type));
	memcpy(req->header + 8, &sector, sizeof(sector));
	req->status = STATUS_UNTOUCHED;
}

static struct fake_chain *new_chain(uint16_t head)
{
	struct fake_chain *chain;

	pthread_mutex_lock(&fake.lock);
	assert_true(fake.queued < MAX_CHAINS);
	chain = &fake.chains[fake.queued];
	pthread_mutex_unlock(&fake.lock);
	memset(chain, 0, sizeof(*chain));
	chain->head = head;
	return chain;
}

static void add_iov(struct fake_chain *chain, void *base, uint32_t len, bool writable)
{
	assert_true(chain->count < MAX_CHAIN_IOV);
	chain->iov[chain->count].base = base;
	chain->iov[chain->count].len = len;
	chain->iov[chain->count].device_writable = writable;
	chain->count++;
}

/* Makes the chain built by new_chain() available to the device. */
static void publish_chain(void)
{
	pthread_mutex_lock(&fake.lock);
	fake.queued++;
	pthread_mutex_unlock(&fake.lock);
}

/* Builds header, one data buffer in the direction of `type`, and the status byte. */
static void queue_request(struct request *req, uint16_t head, uint32_t type, uint64_t sector,
			  void *data, uint32_t len)
{
	struct fake_chain *chain = new_chain(head);

	fill_header(req, type, sector);
	add_iov(chain, req->header, sizeof(req->header), false);
	if (len)
		add_iov(chain, data, len, type != T_OUT && type != T_DISCARD && type != T_WRITE_ZEROES);
	add_iov(chain, &req->status, 1, true);
	publish_chain();
}

/* Notifies the device and waits until it has pushed `count` chains in all. */
static void notify_and_wait(struct smcore_device *dev, size_t count)
{
	struct timespec deadline;
	int ret = 0;

	assert_int_equal(ops->queue_notify(dev, 0), 0);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&fake.lock);
	while (fake.push_count < count && ret == 0)
		ret = pthread_cond_timedwait(&fake.changed, &fake.lock, &deadline);
	pthread_mutex_unlock(&fake.lock);
	if (ret != 0)
		fail_msg("the device pushed %zu chains, expected %zu", fake.push_count, count);
	assert_int_equal(fake.bad_pushes, 0);
}

/* Serves one request and checks the head and written length pushed back for it. */
static void serve_one(struct smcore_device *dev, struct request *req, uint32_t type, uint64_t sector,
		      void *data, uint32_t len, uint32_t expected_written)
{
	uint16_t head;
	size_t index;

	pthread_mutex_lock(&fake.lock);
	head = (uint16_t)(fake.queued + 10);
	index = fake.push_count;
	pthread_mutex_unlock(&fake.lock);

	queue_request(req, head, type, sector, data, len);
	notify_and_wait(dev, index + 1);
	assert_int_equal(fake.pushed_head[index], head);
	assert_int_equal(fake.pushed_written[index], expected_written);
}

static void write_segment(uint8_t *segment, uint64_t sector, uint32_t sectors, uint32_t flags)
{
	memcpy(segment, &sector, sizeof(sector));
	memcpy(segment + 8, &sectors, sizeof(sectors));
	memcpy(segment + 12, &flags, sizeof(flags));
}

static void assert_image_pattern(uint64_t offset, size_t len)
{
	uint8_t buf[4096];

	assert_true(len <= sizeof(buf));
	read_image(offset, buf, len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != pattern_byte(offset + i))
			fail_msg("image byte %llu changed", (unsigned long long)(offset + i));
	}
}

static void assert_image_zero(uint64_t offset, size_t len)
{
	uint8_t buf[4096];

	assert_true(len <= sizeof(buf));
	read_image(offset, buf, len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != 0)
			fail_msg("image byte %llu is 0x%02x, expected 0", (unsigned long long)(offset + i),
				 buf[i]);
	}
}

/* ---- Tests ------------------------------------------------------------- */

static void loader_accepts_plugin(void **state)
{
	const struct smcore_config_key *keys = plugin->desc.config_keys;
	const char *expected[] = { "path", "readonly", "serial", "discard" };

	assert_int_equal(plugin->desc.kind, SMCORE_PLUGIN_DEVICE);
	assert_string_equal(plugin->desc.name, "dev-blk");
	assert_non_null(keys);
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		assert_non_null(keys[i].name);
		assert_string_equal(keys[i].name, expected[i]);
		assert_non_null(keys[i].help);
	}
	assert_null(keys[4].name);
	assert_null(ops->save);
	assert_null(ops->restore);
}

static void realize_describes_writable_disk(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev;
	uint8_t config[60];
	uint64_t capacity;
	uint32_t value;

	set_key("path", image_path);
	dev = realize_ok(&info);
	assert_int_equal(info.virtio_id, 2);
	assert_int_equal(info.queues, 1);
	assert_int_equal(info.queue_max_size, 256);
	assert_int_equal(info.config_size, 60);
	assert_true(info.features & F_SEG_MAX);
	assert_true(info.features & F_FLUSH);
	assert_true(info.features & F_DISCARD);
	assert_true(info.features & F_WRITE_ZEROES);
	assert_false(info.features & F_RO);

	assert_int_equal(ops->config_read(dev, 0, config, sizeof(config)), 0);
	memcpy(&capacity, config, sizeof(capacity));
	assert_int_equal(capacity, IMAGE_SECTORS);
	memcpy(&value, config + 12, sizeof(value));
	assert_int_equal(value, 254);
	memcpy(&value, config + 36, sizeof(value));
	assert_true(value > 0);
	memcpy(&value, config + 40, sizeof(value));
	assert_true(value > 0);
	memcpy(&value, config + 48, sizeof(value));
	assert_true(value > 0);
	memcpy(&value, config + 52, sizeof(value));
	assert_true(value > 0);
	assert_int_equal(config[56], 1);

	/* A partial read at an offset, and one past the end. */
	assert_int_equal(ops->config_read(dev, 4, &value, sizeof(value)), 0);
	assert_int_equal(value, 0);
	assert_int_equal(ops->config_read(dev, 58, &value, sizeof(value)), -EINVAL);
	assert_int_equal(ops->config_write(dev, 0, &value, sizeof(value)), 0);
	ops->destroy(dev);
}

static void realize_describes_readonly_disk(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev;
	uint8_t config[60];

	set_key("path", image_path);
	set_key("readonly", "true");
	dev = realize_ok(&info);
	assert_true(info.features & F_RO);
	assert_true(info.features & F_FLUSH);
	assert_false(info.features & F_DISCARD);
	assert_false(info.features & F_WRITE_ZEROES);
	assert_int_equal(ops->config_read(dev, 0, config, sizeof(config)), 0);
	for (size_t i = 36; i < sizeof(config); i++)
		assert_int_equal(config[i], 0);
	ops->destroy(dev);
}

static void write_then_read_round_trip(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t out[2 * SECTOR], in[2 * SECTOR], file[2 * SECTOR];
	struct request req;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(0xa5 ^ i);
	serve_one(dev, &req, T_OUT, 3, out, sizeof(out), 1);
	assert_int_equal(req.status, S_OK);
	read_image(3 * SECTOR, file, sizeof(file));
	assert_memory_equal(file, out, sizeof(out));
	assert_image_pattern(2 * SECTOR, SECTOR);
	assert_image_pattern(5 * SECTOR, SECTOR);

	memset(in, 0, sizeof(in));
	serve_one(dev, &req, T_IN, 3, in, sizeof(in), sizeof(in) + 1);
	assert_int_equal(req.status, S_OK);
	assert_memory_equal(in, out, sizeof(out));
	assert_true(fake.last_max_iov >= 254 + 2);
	ops->destroy(dev);
}

/* The header split over two buffers, data over three, and the status byte sharing the last one. */
static void read_with_split_buffers(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t header[16], data[3 * SECTOR + 1], expected[3 * SECTOR];
	uint32_t type = T_IN;
	uint64_t sector = 7;
	struct fake_chain *chain;

	memset(header, 0, sizeof(header));
	memcpy(header, &type, sizeof(type));
	memcpy(header + 8, &sector, sizeof(sector));
	memset(data, 0, sizeof(data));
	data[sizeof(data) - 1] = STATUS_UNTOUCHED;

	chain = new_chain(3);
	add_iov(chain, header, 10, false);
	add_iov(chain, header + 10, 6, false);
	add_iov(chain, data, 100, true);
	add_iov(chain, data + 100, 0, true);
	add_iov(chain, data + 100, SECTOR, true);
	add_iov(chain, data + 100 + SECTOR, sizeof(data) - 100 - SECTOR, true);
	publish_chain();
	notify_and_wait(dev, 1);

	read_image(7 * SECTOR, expected, sizeof(expected));
	assert_int_equal(data[sizeof(data) - 1], S_OK);
	assert_memory_equal(data, expected, sizeof(expected));
	assert_int_equal(fake.pushed_written[0], sizeof(data));
	ops->destroy(dev);
}

static void out_of_range_is_ioerr(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[2 * SECTOR];
	struct request req;

	memset(data, 0x11, sizeof(data));
	/* Starts inside the disk but ends one sector past it. */
	serve_one(dev, &req, T_OUT, IMAGE_SECTORS - 1, data, sizeof(data), 1);
	assert_int_equal(req.status, S_IOERR);
	/* A sector that overflows when turned into bytes. */
	serve_one(dev, &req, T_OUT, UINT64_MAX, data, SECTOR, 1);
	assert_int_equal(req.status, S_IOERR);
	serve_one(dev, &req, T_IN, IMAGE_SECTORS, data, SECTOR, 1);
	assert_int_equal(req.status, S_IOERR);
	/* Data that is not whole sectors. */
	serve_one(dev, &req, T_OUT, 0, data, 100, 1);
	assert_int_equal(req.status, S_IOERR);
	assert_image_pattern((IMAGE_SECTORS - 8) * SECTOR, 8 * SECTOR);
	assert_image_pattern(0, SECTOR);
	/* Validation rejected them: none reached the file and failed there. */
	assert_int_equal(fake.log_count, 0);
	ops->destroy(dev);
}

static void readonly_write_is_ioerr(void **state)
{
	struct smcore_device *dev = open_disk("true");
	uint8_t data[SECTOR], segment[16];
	struct request req;

	memset(data, 0x22, sizeof(data));
	serve_one(dev, &req, T_OUT, 1, data, sizeof(data), 1);
	assert_int_equal(req.status, S_IOERR);
	/* Rejected before pwritev, not by the read-only file descriptor. */
	assert_int_equal(fake.log_count, 0);
	write_segment(segment, 1, 1, 0);
	serve_one(dev, &req, T_WRITE_ZEROES, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_UNSUPP);
	serve_one(dev, &req, T_DISCARD, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_UNSUPP);
	assert_image_pattern(SECTOR, SECTOR);

	serve_one(dev, &req, T_IN, 1, data, sizeof(data), sizeof(data) + 1);
	assert_int_equal(req.status, S_OK);
	serve_one(dev, &req, T_FLUSH, 0, NULL, 0, 1);
	assert_int_equal(req.status, S_OK);
	ops->destroy(dev);
}

static void flush_is_ok(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	struct request req;

	serve_one(dev, &req, T_FLUSH, 0, NULL, 0, 1);
	assert_int_equal(req.status, S_OK);
	ops->destroy(dev);
}

static void get_id_returns_serial(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev;
	uint8_t id[20], expected[20] = "disk-7";
	struct request req;

	set_key("path", image_path);
	set_key("serial", "disk-7");
	dev = realize_ok(&info);
	memset(id, 0xff, sizeof(id));
	serve_one(dev, &req, T_GET_ID, 0, id, sizeof(id), sizeof(id) + 1);
	assert_int_equal(req.status, S_OK);
	assert_memory_equal(id, expected, sizeof(id));

	/* A buffer shorter than the ID gets what fits. */
	memset(id, 0xff, sizeof(id));
	serve_one(dev, &req, T_GET_ID, 0, id, 4, 4 + 1);
	assert_int_equal(req.status, S_OK);
	assert_memory_equal(id, "disk", 4);
	assert_int_equal(id[4], 0xff);
	ops->destroy(dev);
}

static void get_id_of_twenty_bytes(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev;
	uint8_t id[24];
	struct request req;

	set_key("path", image_path);
	set_key("serial", "ABCDEFGHIJKLMNOPQRST");
	dev = realize_ok(&info);
	memset(id, 0xff, sizeof(id));
	serve_one(dev, &req, T_GET_ID, 0, id, sizeof(id), 20 + 1);
	assert_int_equal(req.status, S_OK);
	assert_memory_equal(id, "ABCDEFGHIJKLMNOPQRST", 20);
	assert_int_equal(id[20], 0xff);
	ops->destroy(dev);
}

static void get_id_defaults_to_file_name(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	const char *name = strrchr(image_path, '/') + 1;
	uint8_t id[20];
	struct request req;

	memset(id, 0xff, sizeof(id));
	serve_one(dev, &req, T_GET_ID, 0, id, sizeof(id), sizeof(id) + 1);
	assert_int_equal(req.status, S_OK);
	assert_memory_equal(id, name, strlen(name) < 20 ? strlen(name) : 20);
	ops->destroy(dev);
}

static void discard_zeroes_range(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t segments[2 * 16];
	struct request req;

	write_segment(segments, 8, 8, 0);
	write_segment(segments + 16, 32, 8, 0);
	serve_one(dev, &req, T_DISCARD, 0, segments, sizeof(segments), 1);
	assert_int_equal(req.status, S_OK);
	assert_image_zero(8 * SECTOR, 8 * SECTOR);
	assert_image_zero(32 * SECTOR, 8 * SECTOR);
	assert_image_pattern(0, 8 * SECTOR);
	assert_image_pattern(16 * SECTOR, 8 * SECTOR);
	assert_image_pattern(40 * SECTOR, 8 * SECTOR);
	ops->destroy(dev);
}

static void discard_rejects_bad_segments(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t segments[33 * 16];
	struct request req;

	/* The unmap flag is for write zeroes only. */
	write_segment(segments, 8, 8, 1);
	serve_one(dev, &req, T_DISCARD, 0, segments, 16, 1);
	assert_int_equal(req.status, S_UNSUPP);
	/* A good segment followed by one past the end: nothing is applied. */
	write_segment(segments, 8, 8, 0);
	write_segment(segments + 16, IMAGE_SECTORS - 1, 2, 0);
	serve_one(dev, &req, T_DISCARD, 0, segments, 32, 1);
	assert_int_equal(req.status, S_IOERR);
	assert_image_pattern(8 * SECTOR, 8 * SECTOR);
	/* More segments than max_discard_seg, and a partial segment. */
	for (int i = 0; i < 33; i++)
		write_segment(segments + i * 16, (uint64_t)i, 1, 0);
	serve_one(dev, &req, T_DISCARD, 0, segments, sizeof(segments), 1);
	assert_int_equal(req.status, S_IOERR);
	serve_one(dev, &req, T_DISCARD, 0, segments, 24, 1);
	assert_int_equal(req.status, S_IOERR);
	assert_image_pattern(0, 8 * SECTOR);
	ops->destroy(dev);
}

static void write_zeroes_zeroes_range(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t segment[16];
	struct request req;

	write_segment(segment, 4, 3, 0);
	serve_one(dev, &req, T_WRITE_ZEROES, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_OK);
	assert_image_zero(4 * SECTOR, 3 * SECTOR);
	assert_image_pattern(3 * SECTOR, SECTOR);
	assert_image_pattern(7 * SECTOR, SECTOR);

	write_segment(segment, 20, 8, 1);
	serve_one(dev, &req, T_WRITE_ZEROES, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_OK);
	assert_image_zero(20 * SECTOR, 8 * SECTOR);
	assert_image_pattern(28 * SECTOR, SECTOR);

	write_segment(segment, 30, 1, 2);
	serve_one(dev, &req, T_WRITE_ZEROES, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_UNSUPP);
	assert_image_pattern(30 * SECTOR, SECTOR);
	ops->destroy(dev);
}

static void discard_off_is_unsupp(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev;
	uint8_t segment[16];
	struct request req;

	set_key("path", image_path);
	set_key("discard", "false");
	dev = realize_ok(&info);
	assert_false(info.features & F_DISCARD);
	assert_true(info.features & F_WRITE_ZEROES);
	write_segment(segment, 8, 8, 0);
	serve_one(dev, &req, T_DISCARD, 0, segment, sizeof(segment), 1);
	assert_int_equal(req.status, S_UNSUPP);
	assert_image_pattern(8 * SECTOR, 8 * SECTOR);
	ops->destroy(dev);
}

static void unknown_type_is_unsupp(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	struct request req;

	serve_one(dev, &req, 99, 0, NULL, 0, 1);
	assert_int_equal(req.status, S_UNSUPP);
	serve_one(dev, &req, 10 /* GET_LIFETIME, not offered */, 0, NULL, 0, 1);
	assert_int_equal(req.status, S_UNSUPP);
	ops->destroy(dev);
}

static void chain_without_status_byte(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[SECTOR];
	struct fake_chain *chain;
	struct request req;

	/* Header and data, all readable: a write with nowhere to put the status. */
	memset(data, 0x33, sizeof(data));
	fill_header(&req, T_OUT, 0);
	chain = new_chain(5);
	add_iov(chain, req.header, sizeof(req.header), false);
	add_iov(chain, data, sizeof(data), false);
	publish_chain();
	/* An empty chain, and one whose only writable buffer is empty. */
	chain = new_chain(6);
	publish_chain();
	chain = new_chain(7);
	add_iov(chain, req.header, sizeof(req.header), false);
	add_iov(chain, data, 0, true);
	publish_chain();
	notify_and_wait(dev, 3);

	assert_int_equal(fake.pushed_head[0], 5);
	assert_int_equal(fake.pushed_written[0], 0);
	assert_int_equal(fake.pushed_head[1], 6);
	assert_int_equal(fake.pushed_written[1], 0);
	assert_int_equal(fake.pushed_head[2], 7);
	assert_int_equal(fake.pushed_written[2], 0);
	assert_image_pattern(0, SECTOR);
	ops->destroy(dev);
}

static void header_too_short(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[SECTOR];
	struct fake_chain *chain;
	struct request req;

	fill_header(&req, T_IN, 0);
	chain = new_chain(1);
	add_iov(chain, req.header, 12, false);
	add_iov(chain, data, sizeof(data), true);
	add_iov(chain, &req.status, 1, true);
	publish_chain();
	notify_and_wait(dev, 1);
	assert_int_equal(req.status, S_IOERR);
	assert_int_equal(fake.pushed_written[0], 1);
	ops->destroy(dev);
}

static void wrong_direction_is_ioerr(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[SECTOR], status = STATUS_UNTOUCHED;
	struct fake_chain *chain;
	struct request req;

	/* A read whose data buffer the device may not write. */
	fill_header(&req, T_IN, 0);
	chain = new_chain(1);
	add_iov(chain, req.header, sizeof(req.header), false);
	add_iov(chain, data, sizeof(data), false);
	add_iov(chain, &req.status, 1, true);
	publish_chain();
	/* A readable buffer after a writable one. */
	chain = new_chain(2);
	add_iov(chain, req.header, sizeof(req.header), false);
	add_iov(chain, data, sizeof(data), true);
	add_iov(chain, data, 16, false);
	add_iov(chain, &status, 1, true);
	publish_chain();
	notify_and_wait(dev, 2);
	assert_int_equal(req.status, S_IOERR);
	assert_int_equal(status, S_IOERR);
	assert_int_equal(fake.pushed_written[0], 1);
	assert_int_equal(fake.pushed_written[1], 1);
	ops->destroy(dev);
}

static void read_of_truncated_file(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[2 * SECTOR];
	struct request req;

	assert_int_equal(truncate(image_path, 10 * SECTOR + SECTOR / 2), 0);
	/* The read stops half way into its second sector. */
	serve_one(dev, &req, T_IN, 9, data, sizeof(data), SECTOR + SECTOR / 2 + 1);
	assert_int_equal(req.status, S_IOERR);
	serve_one(dev, &req, T_IN, 40, data, sizeof(data), 1);
	assert_int_equal(req.status, S_IOERR);
	pthread_mutex_lock(&fake.lock);
	assert_true(fake.log_count >= 1);
	assert_non_null(strstr(fake.log_message, "sector 9"));
	pthread_mutex_unlock(&fake.lock);
	ops->destroy(dev);
}

static void broken_queue_stops_until_notify(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[SECTOR];
	struct timespec deadline;
	struct request req;
	int ret = 0;

	fake.broken = true;
	queue_request(&req, 4, T_IN, 0, data, sizeof(data));
	assert_int_equal(ops->queue_notify(dev, 0), 0);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&fake.lock);
	while (fake.pop_calls == 0 && ret == 0)
		ret = pthread_cond_timedwait(&fake.changed, &fake.lock, &deadline);
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(ret, 0);
	usleep(20 * 1000);
	pthread_mutex_lock(&fake.lock);
	assert_int_equal(fake.pop_calls, 1);
	assert_int_equal(fake.push_count, 0);
	fake.broken = false;
	pthread_mutex_unlock(&fake.lock);

	notify_and_wait(dev, 1);
	assert_int_equal(fake.pushed_head[0], 4);
	assert_int_equal(req.status, S_OK);
	ops->destroy(dev);
}

static void reset_then_notify_again(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	uint8_t data[SECTOR];
	struct request req;

	serve_one(dev, &req, T_IN, 0, data, sizeof(data), sizeof(data) + 1);
	assert_int_equal(ops->reset(dev), 0);
	assert_int_equal(ops->reset(dev), 0);
	serve_one(dev, &req, T_IN, 1, data, sizeof(data), sizeof(data) + 1);
	assert_int_equal(req.status, S_OK);
	assert_image_pattern(SECTOR, SECTOR);
	ops->destroy(dev);
}

static void second_writer_is_rejected(void **state)
{
	struct smcore_device *dev = open_disk(NULL);
	const char *fragments[] = { image_path, "in use", NULL };

	fake.key_count = 0;
	set_key("path", image_path);
	expect_config_error("path", fragments);
	ops->destroy(dev);
}

static void config_missing_path(void **state)
{
	const char *fragments[] = { "missing", "path = ", NULL };

	expect_config_error("path", fragments);
}

static void config_nonexistent_file(void **state)
{
	const char *fragments[] = { "/nonexistent/disk.img", "No such file or directory", NULL };

	set_key("path", "/nonexistent/disk.img");
	expect_config_error("path", fragments);
}

static void config_size_not_sector_multiple(void **state)
{
	const char *fragments[] = { image_path, "1000 bytes", "multiple of 512", "1024", NULL };

	assert_int_equal(truncate(image_path, 1000), 0);
	set_key("path", image_path);
	expect_config_error("path", fragments);
}

static void config_empty_file(void **state)
{
	const char *fragments[] = { image_path, "empty", NULL };

	assert_int_equal(truncate(image_path, 0), 0);
	set_key("path", image_path);
	expect_config_error("path", fragments);
}

static void config_directory(void **state)
{
	const char *fragments[] = { "/tmp", NULL };

	set_key("path", "/tmp");
	set_key("readonly", "true");
	expect_config_error("path", fragments);
}

static void config_bad_readonly(void **state)
{
	const char *fragments[] = { "'yes please'", "true or false", NULL };

	set_key("path", image_path);
	set_key("readonly", "yes please");
	expect_config_error("readonly", fragments);
}

static void config_bad_discard(void **state)
{
	const char *fragments[] = { "'1'", "true or false", NULL };

	set_key("path", image_path);
	set_key("discard", "1");
	expect_config_error("discard", fragments);
}

static void config_discard_on_readonly(void **state)
{
	const char *fragments[] = { "writable", "discard = false", NULL };

	set_key("path", image_path);
	set_key("readonly", "true");
	set_key("discard", "true");
	expect_config_error("discard", fragments);
}

static void config_long_serial(void **state)
{
	const char *fragments[] = { "'ABCDEFGHIJKLMNOPQRSTU'", "21 bytes", "20", NULL };

	set_key("path", image_path);
	set_key("serial", "ABCDEFGHIJKLMNOPQRSTU");
	expect_config_error("serial", fragments);
}

static void old_host_table_is_rejected(void **state)
{
	struct smcore_device_info info = { 0 };
	struct smcore_device *dev = NULL;

	host.size = offsetof(struct smcore_host, config_path);
	set_key("path", image_path);
	assert_int_equal(ops->realize(&host, &fake, &dev, &info), -ENOTSUP);
	assert_null(dev);
	assert_non_null(strstr(fake.error_message, "ABI 1.1"));
}

#define BLK_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BLK_TEST(loader_accepts_plugin),
		BLK_TEST(realize_describes_writable_disk),
		BLK_TEST(realize_describes_readonly_disk),
		BLK_TEST(write_then_read_round_trip),
		BLK_TEST(read_with_split_buffers),
		BLK_TEST(out_of_range_is_ioerr),
		BLK_TEST(readonly_write_is_ioerr),
		BLK_TEST(flush_is_ok),
		BLK_TEST(get_id_returns_serial),
		BLK_TEST(get_id_of_twenty_bytes),
		BLK_TEST(get_id_defaults_to_file_name),
		BLK_TEST(discard_zeroes_range),
		BLK_TEST(discard_rejects_bad_segments),
		BLK_TEST(write_zeroes_zeroes_range),
		BLK_TEST(discard_off_is_unsupp),
		BLK_TEST(unknown_type_is_unsupp),
		BLK_TEST(chain_without_status_byte),
		BLK_TEST(header_too_short),
		BLK_TEST(wrong_direction_is_ioerr),
		BLK_TEST(read_of_truncated_file),
		BLK_TEST(broken_queue_stops_until_notify),
		BLK_TEST(reset_then_notify_again),
		BLK_TEST(second_writer_is_rejected),
		BLK_TEST(config_missing_path),
		BLK_TEST(config_nonexistent_file),
		BLK_TEST(config_size_not_sector_multiple),
		BLK_TEST(config_empty_file),
		BLK_TEST(config_directory),
		BLK_TEST(config_bad_readonly),
		BLK_TEST(config_bad_discard),
		BLK_TEST(config_discard_on_readonly),
		BLK_TEST(config_long_serial),
		BLK_TEST(old_host_table_is_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
