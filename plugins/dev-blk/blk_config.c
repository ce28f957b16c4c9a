// SPDX-License-Identifier: Apache-2.0
/* The [device.NAME] keys of dev-blk, and opening the image file they name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev_blk.h"

static int blk_config_bool(struct smcore_device *dev, const char *key, bool fallback, bool *value)
{
	const char *text = dev->host->config_get(dev->ctx, key);

	if (!text) {
		*value = fallback;
		return 0;
	}
	if (strcmp(text, "true") == 0) {
		*value = true;
		return 0;
	}
	if (strcmp(text, "false") == 0) {
		*value = false;
		return 0;
	}
	return dev->host->config_error(dev->ctx, key, "invalid value '%s' (expected true or false)",
				       text);
}

static int blk_image_size(struct smcore_device *dev, const char *path, uint64_t *size)
{
	struct stat st;

	if (fstat(dev->fd, &st) < 0)
		return dev->host->config_error(dev->ctx, "path", "cannot stat '%s': %s", path,
					       strerror(errno));
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(dev->fd, BLKGETSIZE64, size) < 0)
			return dev->host->config_error(dev->ctx, "path",
						       "cannot read the size of block device '%s': %s",
						       path, strerror(errno));
		return 0;
	}
	return dev->host->config_error(dev->ctx, "path",
				       "'%s' is not a regular file or a block device (expected a raw disk image)",
				       path);
}

/*
 * Takes a shared lock for a read-only disk and an exclusive one otherwise, so
 * a second dev-blk device cannot write an image that another one uses.
 */
static int blk_lock_image(struct smcore_device *dev, const char *path)
{
	if (flock(dev->fd, (dev->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return dev->host->config_error(dev->ctx, "path",
					       "'%s' is in use by another VM or process (%s)", path,
					       dev->readonly ?
					       "it holds the image open for writing" :
					       "stop it, or set readonly = true in both if neither writes");
	return dev->host->config_error(dev->ctx, "path", "cannot lock '%s': %s", path,
				       strerror(errno));
}

static int blk_open_image(struct smcore_device *dev, const char *path)
{
	uint64_t size;
	int ret;

	dev->fd = open(path, (dev->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dev->fd < 0 && !dev->readonly && (errno == EACCES || errno == EROFS || errno == EPERM))
		return dev->host->config_error(dev->ctx, "path",
					       "cannot open '%s' for writing: %s (set readonly = true to attach it read-only)",
					       path, strerror(errno));
	if (dev->fd < 0)
		return dev->host->config_error(dev->ctx, "path", "cannot open '%s': %s", path,
					       strerror(errno));

	ret = blk_image_size(dev, path, &size);
	if (ret < 0)
		return ret;
	if (size == 0)
		return dev->host->config_error(dev->ctx, "path",
					       "'%s' is empty (expected a raw disk image of at least 512 bytes)",
					       path);
	if (size % BLK_SECTOR_SIZE != 0)
		return dev->host->config_error(dev->ctx, "path",
					       "'%s' is %llu bytes, not a multiple of 512 (extend it with truncate -s %llu)",
					       path, (unsigned long long)size,
					       (unsigned long long)(size / BLK_SECTOR_SIZE + 1) *
					       BLK_SECTOR_SIZE);
	dev->capacity = size / BLK_SECTOR_SIZE;
	return blk_lock_image(dev, path);
}

/* The serial defaults to the image's file name, cut to the 20 bytes of the disk ID. */
static int blk_config_serial(struct smcore_device *dev, const char *path)
{
	const char *serial = dev->host->config_get(dev->ctx, "serial");
	size_t len;

	if (serial) {
		len = strlen(serial);
		if (len > BLK_ID_BYTES)
			return dev->host->config_error(dev->ctx, "serial",
						       "'%s' is %zu bytes long (at most %d bytes fit in the disk ID)",
						       serial, len, BLK_ID_BYTES);
	} else {
		const char *slash = strrchr(path, '/');

		serial = slash ? slash + 1 : path;
		len = strlen(serial);
		if (len > BLK_ID_BYTES)
			len = BLK_ID_BYTES;
	}
	memcpy(dev->serial, serial, len);
	dev->serial_len = (uint32_t)len;
	return 0;
}

int blk_config__load(struct smcore_device *dev)
{
	const char *path;
	bool discard_set;
	int ret;

	path = dev->host->config_path(dev->ctx, "path");
	if (!path || !*path)
		return dev->host->config_error(dev->ctx, "path",
					       "missing (set it to a raw disk image file, such as path = disk.img)");

	ret = blk_config_bool(dev, "readonly", false, &dev->readonly);
	if (ret < 0)
		return ret;
	discard_set = dev->host->config_get(dev->ctx, "discard") != NULL;
	ret = blk_config_bool(dev, "discard", !dev->readonly, &dev->discard);
	if (ret < 0)
		return ret;
	if (dev->readonly && dev->discard && discard_set)
		return dev->host->config_error(dev->ctx, "discard",
					       "true needs a writable disk (set discard = false, or readonly = false)");

	ret = blk_config_serial(dev, path);
	if (ret < 0)
		return ret;
	return blk_open_image(dev, path);
}
