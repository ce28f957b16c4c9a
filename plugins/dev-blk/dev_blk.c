// SPDX-License-Identifier: Apache-2.0
/*
 * The dev-blk descriptor and device ops. queue_notify only wakes the device's
 * I/O thread, which pops chains with host->queue_pop, serves them against
 * the image file and returns them with host->queue_push.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev_blk.h"

/* The services this plugin uses that arrived in ABI 1.1. */
#define BLK_HOST_MIN_SIZE \
	(offsetof(struct smcore_host, queue_push) + sizeof(((struct smcore_host *)0)->queue_push))

void blk__warn(struct smcore_device *dev, const char *fmt, ...)
{
	struct timespec now;
	char message[256];
	va_list args;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (dev->last_warning.tv_sec != 0 && now.tv_sec - dev->last_warning.tv_sec < 1) {
		dev->suppressed_warnings++;
		return;
	}

	va_start(args, fmt);
	vsnprintf(message, sizeof(message), fmt, args);
	va_end(args);
	if (dev->suppressed_warnings)
		dev->host->log(dev->ctx, SMCORE_LOG_WARNING, "%s (%llu more I/O warnings suppressed)",
			       message, (unsigned long long)dev->suppressed_warnings);
	else
		dev->host->log(dev->ctx, SMCORE_LOG_WARNING, "%s", message);
	dev->last_warning = now;
	if (dev->last_warning.tv_sec == 0)
		dev->last_warning.tv_sec = 1;
	dev->suppressed_warnings = 0;
}

static bool blk_should_stop_draining(struct smcore_device *dev)
{
	bool stop;

	pthread_mutex_lock(&dev->lock);
	stop = dev->reset_requested || dev->stopping;
	pthread_mutex_unlock(&dev->lock);
	return stop;
}

/* Serves chains until the queue is empty or broken, or until a reset or destroy is requested. */
static void blk_drain_queue(struct smcore_device *dev)
{
	while (!blk_should_stop_draining(dev)) {
		struct smcore_chain chain = { 0 };
		uint32_t written;
		int ret;

		ret = dev->host->queue_pop(dev->ctx, 0, &chain, dev->iov, BLK_MAX_IOV);
		if (ret <= 0)
			return;
		written = blk_request__serve(dev, &chain);
		dev->host->queue_push(dev->ctx, 0, chain.head, written);
	}
}

static void *blk_io_thread(void *opaque)
{
	struct smcore_device *dev = opaque;

	pthread_mutex_lock(&dev->lock);
	for (;;) {
		while (!dev->notified && !dev->stopping)
			pthread_cond_wait(&dev->wake, &dev->lock);
		if (dev->stopping)
			break;
		dev->notified = false;
		dev->busy = true;
		pthread_mutex_unlock(&dev->lock);

		blk_drain_queue(dev);

		pthread_mutex_lock(&dev->lock);
		dev->busy = false;
		pthread_cond_broadcast(&dev->idle);
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}

/* Starts the I/O thread with every signal blocked, so signals meant for the VMM reach the core's threads. */
static int blk_start_thread(struct smcore_device *dev)
{
	sigset_t all, saved;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	ret = pthread_create(&dev->thread, NULL, blk_io_thread, dev);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (ret != 0)
		return dev->host->error(dev->ctx, ret, "cannot start the I/O thread: %s", strerror(ret));
	pthread_setname_np(dev->thread, "dev-blk");
	return 0;
}

static void blk_free(struct smcore_device *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	pthread_cond_destroy(&dev->idle);
	pthread_cond_destroy(&dev->wake);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

static uint64_t blk_features(const struct smcore_device *dev)
{
	uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_FLUSH;

	if (dev->readonly)
		return features | 1ull << VIRTIO_BLK_F_RO;
	features |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	if (dev->discard)
		features |= 1ull << VIRTIO_BLK_F_DISCARD;
	return features;
}

static int blk_realize(const struct smcore_host *host, struct smcore_ctx *ctx,
		       struct smcore_device **out, struct smcore_device_info *info)
{
	struct smcore_device *dev;
	int ret;

	if (host->size < BLK_HOST_MIN_SIZE)
		return host->error(ctx, ENOTSUP,
				   "needs a core with plugin ABI 1.1 or later (its host services table has %u bytes, expected at least %zu)",
				   host->size, (size_t)BLK_HOST_MIN_SIZE);

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return host->error(ctx, ENOMEM, "out of memory for the device state");
	dev->host = host;
	dev->ctx = ctx;
	dev->fd = -1;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->wake, NULL);
	pthread_cond_init(&dev->idle, NULL);

	ret = blk_config__load(dev);
	if (ret == 0)
		ret = blk_start_thread(dev);
	if (ret < 0) {
		blk_free(dev);
		return ret;
	}

	info->virtio_id = BLK_VIRTIO_ID;
	info->features = blk_features(dev);
	info->queues = 1;
	info->queue_max_size = BLK_QUEUE_SIZE;
	info->config_size = BLK_CONFIG_SIZE;
	*out = dev;
	return 0;
}

static int blk_queue_notify(struct smcore_device *dev, uint16_t queue)
{
	if (queue != 0)
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	dev->notified = true;
	pthread_cond_signal(&dev->wake);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

/* Waits for the request in progress. Chains the thread has not popped stay with the core. */
static int blk_reset(struct smcore_device *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->reset_requested = true;
	while (dev->busy)
		pthread_cond_wait(&dev->idle, &dev->lock);
	dev->reset_requested = false;
	dev->notified = false;
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

static void blk_put_le32(uint8_t *config, uint32_t offset, uint32_t value)
{
	value = htole32(value);
	memcpy(config + offset, &value, sizeof(value));
}

/* Offsets are those of struct virtio_blk_config in the virtio 1.x block device section. */
static void blk_fill_config(const struct smcore_device *dev, uint8_t config[BLK_CONFIG_SIZE])
{
	uint64_t capacity = htole64(dev->capacity);

	memset(config, 0, BLK_CONFIG_SIZE);
	memcpy(config, &capacity, sizeof(capacity));
	blk_put_le32(config, 12, BLK_SEG_MAX);
	if (dev->discard) {
		blk_put_le32(config, 36, BLK_MAX_DISCARD_SECTORS);
		blk_put_le32(config, 40, BLK_MAX_DISCARD_SEG);
		blk_put_le32(config, 44, BLK_DISCARD_ALIGNMENT_SECTORS);
	}
	if (!dev->readonly) {
		blk_put_le32(config, 48, BLK_MAX_WRITE_ZEROES_SECTORS);
		blk_put_le32(config, 52, BLK_MAX_WRITE_ZEROES_SEG);
		config[56] = dev->discard ? 1 : 0;
	}
}

static int blk_config_read(struct smcore_device *dev, uint32_t offset, void *data, uint32_t len)
{
	uint8_t config[BLK_CONFIG_SIZE];

	if (offset > BLK_CONFIG_SIZE || len > BLK_CONFIG_SIZE - offset)
		return -EINVAL;
	blk_fill_config(dev, config);
	memcpy(data, config + offset, len);
	return 0;
}

/* The driver may write only writeback, which needs VIRTIO_BLK_F_CONFIG_WCE, not offered here. */
static int blk_config_write(struct smcore_device *dev, uint32_t offset, const void *data,
			    uint32_t len)
{
	return 0;
}

static void blk_destroy(struct smcore_device *dev)
{
	if (!dev)
		return;
	pthread_mutex_lock(&dev->lock);
	dev->stopping = true;
	pthread_cond_signal(&dev->wake);
	pthread_mutex_unlock(&dev->lock);
	pthread_join(dev->thread, NULL);
	blk_free(dev);
}

static const struct smcore_device_ops blk_ops = {
	.realize = blk_realize,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.destroy = blk_destroy,
};

static const struct smcore_config_key blk_config_keys[] = {
	{ "path", "raw disk image file or block device; a relative path is resolved against the config file's directory" },
	{ "readonly", "true or false (default false): open the image read-only and offer the guest a read-only disk" },
	{ "serial", "disk serial number the guest reads, at most 20 bytes (default: the image's file name, cut to 20 bytes)" },
	{ "discard", "true or false (default true, and false when readonly): turn the guest's discard requests into holes in the image" },
	{ NULL, NULL },
};

SMCORE_PLUGIN = {
	.abi_major = SMCORE_ABI_MAJOR,
	.abi_minor = SMCORE_ABI_MINOR,
	.size = sizeof(struct smcore_plugin_descriptor),
	.kind = SMCORE_PLUGIN_DEVICE,
	.name = "dev-blk",
	.version = "0.1.0",
	.license = "Apache-2.0",
	.description = "virtio-blk disk backed by a raw image file",
	.ops = &blk_ops,
	.ops_size = sizeof(blk_ops),
	.config_keys = blk_config_keys,
};
