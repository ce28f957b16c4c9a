// SPDX-License-Identifier: Apache-2.0
/*
 * DISCARD and WRITE_ZEROES requests. Their data is a list of 16-byte segments
 * (sector, number of sectors, flags). Every segment is checked before any is
 * applied, so a request with an invalid segment changes nothing.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dev_blk.h"

#define BLK_MAX_SEGMENTS 32

_Static_assert(BLK_MAX_DISCARD_SEG <= BLK_MAX_SEGMENTS, "segment buffer too small for discard");
_Static_assert(BLK_MAX_WRITE_ZEROES_SEG <= BLK_MAX_SEGMENTS,
	       "segment buffer too small for write zeroes");

struct blk_segment {
	uint64_t sector;
	uint32_t sectors;
	uint32_t flags;
};

static void blk_copy_from_iov(const struct iovec *iov, int count, void *dst, uint64_t len)
{
	uint64_t copied = 0;

	for (int i = 0; i < count && copied < len; i++) {
		uint64_t take = iov[i].iov_len;

		if (take > len - copied)
			take = len - copied;
		memcpy((uint8_t *)dst + copied, iov[i].iov_base, take);
		copied += take;
	}
}

static void blk_decode_segments(const uint8_t *raw, uint32_t count, struct blk_segment *segments)
{
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *field = raw + (size_t)i * BLK_SEGMENT_BYTES;
		uint64_t sector;
		uint32_t sectors, flags;

		memcpy(&sector, field, sizeof(sector));
		memcpy(&sectors, field + 8, sizeof(sectors));
		memcpy(&flags, field + 12, sizeof(flags));
		segments[i].sector = le64toh(sector);
		segments[i].sectors = le32toh(sectors);
		segments[i].flags = le32toh(flags);
	}
}

/* The virtio spec makes an unknown flag, or the unmap flag on a discard, UNSUPP. */
static uint8_t blk_check_segment(const struct smcore_device *dev, uint32_t type,
				 const struct blk_segment *segment)
{
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	uint32_t allowed_flags = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	uint32_t max_sectors = discard ? BLK_MAX_DISCARD_SECTORS : BLK_MAX_WRITE_ZEROES_SECTORS;

	if (segment->flags & ~allowed_flags)
		return VIRTIO_BLK_S_UNSUPP;
	if (segment->sectors > max_sectors || !blk__range_valid(dev, segment->sector, segment->sectors))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_discard(struct smcore_device *dev, uint64_t offset, uint64_t len)
{
	if (fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return VIRTIO_BLK_S_OK;
	if (errno == EOPNOTSUPP) {
		blk__warn(dev, "discard is not supported by the image's file system: %s",
			  strerror(errno));
		return VIRTIO_BLK_S_UNSUPP;
	}
	blk__warn(dev, "discard of %llu bytes at byte %llu failed: %s", (unsigned long long)len,
		  (unsigned long long)offset, strerror(errno));
	return VIRTIO_BLK_S_IOERR;
}

static int blk_write_zero_bytes(int fd, uint64_t offset, uint64_t len)
{
	static const uint8_t zeros[64 * 1024];

	while (len > 0) {
		size_t chunk = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t n = pwrite(fd, zeros, chunk, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		offset += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/*
 * Zeroes a range, cheapest way first: a hole when the guest allows unmapping
 * and discard is on, then FALLOC_FL_ZERO_RANGE, then plain writes of zeros
 * for file systems (such as tmpfs) that support neither.
 */
static uint8_t blk_write_zeroes(struct smcore_device *dev, uint64_t offset, uint64_t len,
				uint32_t flags)
{
	int ret;

	if ((flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) && dev->discard &&
	    fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return VIRTIO_BLK_S_OK;
	if (fallocate(dev->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return VIRTIO_BLK_S_OK;
	ret = errno == EOPNOTSUPP ? blk_write_zero_bytes(dev->fd, offset, len) : -errno;
	if (ret < 0) {
		blk__warn(dev, "write zeroes of %llu bytes at byte %llu failed: %s",
			  (unsigned long long)len, (unsigned long long)offset, strerror(-ret));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

uint8_t blk_zero__serve(struct smcore_device *dev, uint32_t type, const struct iovec *iov,
			int iov_count, uint64_t len)
{
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_segments = discard ? BLK_MAX_DISCARD_SEG : BLK_MAX_WRITE_ZEROES_SEG;
	uint8_t raw[BLK_MAX_SEGMENTS * BLK_SEGMENT_BYTES];
	struct blk_segment segments[BLK_MAX_SEGMENTS];
	uint32_t count;
	uint8_t status;

	/* A read-only disk offers neither feature, and discard can be turned off. */
	if (dev->readonly || (discard && !dev->discard))
		return VIRTIO_BLK_S_UNSUPP;
	if (len == 0 || len % BLK_SEGMENT_BYTES != 0 || len / BLK_SEGMENT_BYTES > max_segments)
		return VIRTIO_BLK_S_IOERR;

	count = (uint32_t)(len / BLK_SEGMENT_BYTES);
	blk_copy_from_iov(iov, iov_count, raw, len);
	blk_decode_segments(raw, count, segments);
	for (uint32_t i = 0; i < count; i++) {
		status = blk_check_segment(dev, type, &segments[i]);
		if (status != VIRTIO_BLK_S_OK)
			return status;
	}

	for (uint32_t i = 0; i < count; i++) {
		uint64_t offset = segments[i].sector << BLK_SECTOR_SHIFT;
		uint64_t bytes = (uint64_t)segments[i].sectors << BLK_SECTOR_SHIFT;

		if (bytes == 0)
			continue;
		if (discard)
			status = blk_discard(dev, offset, bytes);
		else
			status = blk_write_zeroes(dev, offset, bytes, segments[i].flags);
		if (status != VIRTIO_BLK_S_OK)
			return status;
	}
	return VIRTIO_BLK_S_OK;
}
