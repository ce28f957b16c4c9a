// SPDX-License-Identifier: Apache-2.0
/*
 * Parsing and serving of virtio-blk requests. A request is a 16-byte header
 * (type, reserved, sector), data buffers, and one status byte at the very end
 * of the chain. The guest is untrusted, so every chain is checked before the
 * image file is touched.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dev_blk.h"

struct blk_request {
	uint32_t type;
	uint64_t sector;
	struct iovec out[BLK_MAX_IOV]; /* driver-written data after the header */
	int out_count;
	uint64_t out_len;
	struct iovec in[BLK_MAX_IOV];  /* device-writable data before the status byte */
	int in_count;
	uint64_t in_len;
	uint8_t *status;
};

enum blk_parse_result {
	BLK_PARSE_OK,
	BLK_PARSE_MALFORMED, /* the chain has a status byte but no valid request */
	BLK_PARSE_NO_STATUS, /* nowhere to report anything */
};

/* Finds the status byte: the last byte of the last non-empty buffer, which must be writable. */
static int blk_request_find_status(const struct smcore_chain *chain, uint8_t **status)
{
	for (uint32_t i = chain->count; i > 0; i--) {
		const struct smcore_iovec *iov = &chain->iov[i - 1];

		if (iov->len == 0)
			continue;
		if (!iov->device_writable)
			return -1;
		*status = (uint8_t *)iov->base + iov->len - 1;
		return (int)(i - 1);
	}
	return -1;
}

static void blk_request_add(struct iovec *vec, int *count, uint64_t *total, void *base, size_t len)
{
	if (len == 0)
		return;
	vec[*count].iov_base = base;
	vec[*count].iov_len = len;
	(*count)++;
	*total += len;
}

/*
 * Splits the chain into header, data-out, data-in and status. The header may
 * span several buffers because virtio 1.x does not fix the chain's layout.
 */
static enum blk_parse_result blk_request_parse(const struct smcore_chain *chain,
					       struct blk_request *req)
{
	uint8_t header[BLK_REQUEST_HEADER_BYTES];
	uint32_t header_have = 0;
	bool seen_writable = false;
	int status_index;

	status_index = blk_request_find_status(chain, &req->status);
	if (status_index < 0)
		return BLK_PARSE_NO_STATUS;

	for (int i = 0; i <= status_index; i++) {
		const struct smcore_iovec *iov = &chain->iov[i];
		uint8_t *base = iov->base;
		size_t len = i == status_index ? iov->len - 1 : iov->len;

		if (iov->device_writable) {
			seen_writable = true;
			blk_request_add(req->in, &req->in_count, &req->in_len, base, len);
			continue;
		}
		if (seen_writable)
			return BLK_PARSE_MALFORMED;
		if (header_have < sizeof(header)) {
			size_t take = sizeof(header) - header_have;

			if (take > len)
				take = len;
			memcpy(header + header_have, base, take);
			header_have += take;
			base += take;
			len -= take;
		}
		blk_request_add(req->out, &req->out_count, &req->out_len, base, len);
	}
	if (header_have < sizeof(header))
		return BLK_PARSE_MALFORMED;

	memcpy(&req->type, header, sizeof(req->type));
	memcpy(&req->sector, header + 8, sizeof(req->sector));
	req->type = le32toh(req->type);
	req->sector = le64toh(req->sector);
	return BLK_PARSE_OK;
}

/*
 * Moves all of `iov` to or from the file at `offset`, retrying short
 * transfers, and stores the bytes moved in `done`. Returns 0 or a negative
 * errno, which is -EIO when a read meets the end of the file.
 */
static int blk_transfer(int fd, struct iovec *iov, int count, uint64_t offset, bool write,
			uint64_t *done)
{
	*done = 0;
	while (count > 0) {
		ssize_t n;

		if (write)
			n = pwritev(fd, iov, count, (off_t)(offset + *done));
		else
			n = preadv(fd, iov, count, (off_t)(offset + *done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		*done += (uint64_t)n;

		while (count > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Checks what a read or write needs: data in one direction only, whole sectors, inside the disk. */
static bool blk_rw_valid(const struct smcore_device *dev, const struct blk_request *req,
			 uint64_t data_len, uint64_t wrong_way_len)
{
	if (wrong_way_len != 0 || data_len % BLK_SECTOR_SIZE != 0)
		return false;
	return blk__range_valid(dev, req->sector, data_len >> BLK_SECTOR_SHIFT);
}

/* Serves an IN (read) or OUT (write) request between its data buffers and the image file. */
static uint8_t blk_read_write(struct smcore_device *dev, struct blk_request *req, bool write,
			      uint32_t *written)
{
	struct iovec *iov = write ? req->out : req->in;
	int count = write ? req->out_count : req->in_count;
	uint64_t len = write ? req->out_len : req->in_len;
	uint64_t wrong_way_len = write ? req->in_len : req->out_len;
	uint64_t done = 0;
	int ret;

	if ((write && dev->readonly) || !blk_rw_valid(dev, req, len, wrong_way_len))
		return VIRTIO_BLK_S_IOERR;

	ret = blk_transfer(dev->fd, iov, count, req->sector << BLK_SECTOR_SHIFT, write, &done);
	if (!write) {
		/* One less than the maximum, because the status byte is counted too. */
		*written = done < UINT32_MAX ? (uint32_t)done : UINT32_MAX - 1;
	}
	if (ret < 0) {
		blk__warn(dev, "%s of %llu bytes at sector %llu failed after %llu bytes: %s",
			  write ? "write" : "read", (unsigned long long)len,
			  (unsigned long long)req->sector, (unsigned long long)done, strerror(-ret));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_flush(struct smcore_device *dev)
{
	if (dev->readonly)
		return VIRTIO_BLK_S_OK;
	if (fdatasync(dev->fd) < 0) {
		blk__warn(dev, "flush failed: %s", strerror(errno));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Copies up to `len` bytes from `src` into the iovecs and returns the bytes copied. */
static uint64_t blk_copy_to_iov(const struct iovec *iov, int count, const void *src, uint64_t len)
{
	uint64_t copied = 0;

	for (int i = 0; i < count && copied < len; i++) {
		uint64_t take = iov[i].iov_len;

		if (take > len - copied)
			take = len - copied;
		memcpy(iov[i].iov_base, (const uint8_t *)src + copied, take);
		copied += take;
	}
	return copied;
}

/* The ID is 20 bytes, padded with NUL bytes, and has no terminator when the serial fills it. */
static uint8_t blk_get_id(struct smcore_device *dev, struct blk_request *req, uint32_t *written)
{
	uint8_t id[BLK_ID_BYTES] = { 0 };

	if (req->in_len == 0)
		return VIRTIO_BLK_S_IOERR;
	memcpy(id, dev->serial, dev->serial_len);
	*written = (uint32_t)blk_copy_to_iov(req->in, req->in_count, id, sizeof(id));
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_dispatch(struct smcore_device *dev, struct blk_request *req, uint32_t *written)
{
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		return blk_read_write(dev, req, false, written);
	case VIRTIO_BLK_T_OUT:
		return blk_read_write(dev, req, true, written);
	case VIRTIO_BLK_T_FLUSH:
		return blk_flush(dev);
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(dev, req, written);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (req->in_len != 0)
			return VIRTIO_BLK_S_IOERR;
		return blk_zero__serve(dev, req->type, req->out, req->out_count, req->out_len);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

uint32_t blk_request__serve(struct smcore_device *dev, const struct smcore_chain *chain)
{
	struct blk_request req = { 0 };
	uint32_t written = 0;
	uint8_t status;

	switch (blk_request_parse(chain, &req)) {
	case BLK_PARSE_NO_STATUS:
		return 0;
	case BLK_PARSE_MALFORMED:
		status = VIRTIO_BLK_S_IOERR;
		break;
	default:
		status = blk_dispatch(dev, &req, &written);
		break;
	}
	*req.status = status;
	return written + 1;
}
