/* SPDX-License-Identifier: Apache-2.0 */
/* dev-blk: a virtio-blk device over a raw image file, served by one I/O thread. */
#ifndef DEV_BLK_H
#define DEV_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <smcore/plugin.h>

/* Feature bits of the virtio 1.x block device. */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Values of the status byte. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

#define BLK_VIRTIO_ID 2
#define BLK_SECTOR_SIZE 512u
#define BLK_SECTOR_SHIFT 9
#define BLK_ID_BYTES 20
#define BLK_REQUEST_HEADER_BYTES 16
#define BLK_SEGMENT_BYTES 16 /* one struct virtio_blk_discard_write_zeroes */

#define BLK_QUEUE_SIZE 256
/* Data buffers per request; the header and the status byte add two more. */
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_IOV BLK_QUEUE_SIZE
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB */
#define BLK_MAX_DISCARD_SEG 32
#define BLK_DISCARD_ALIGNMENT_SECTORS 8 /* 4 KiB, the usual file system block */
#define BLK_MAX_WRITE_ZEROES_SECTORS (1u << 22)
#define BLK_MAX_WRITE_ZEROES_SEG 32

/*
 * Bytes of struct virtio_blk_config up to and including write_zeroes_may_unmap
 * and its three bytes of padding.
 */
#define BLK_CONFIG_SIZE 60

struct smcore_device {
	const struct smcore_host *host;
	struct smcore_ctx *ctx;

	int fd;
	bool readonly;
	bool discard;
	uint64_t capacity; /* in 512-byte sectors */
	char serial[BLK_ID_BYTES];
	uint32_t serial_len;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* signalled on a notify and on destroy */
	pthread_cond_t idle; /* broadcast when the thread stops draining */

	bool notified;        /* the guest notified since the thread last drained the queue */
	bool reset_requested; /* stop after the current request */
	bool stopping;
	bool busy;            /* the thread is draining the queue */

	/* Only the I/O thread touches these. */
	struct smcore_iovec iov[BLK_MAX_IOV];
	struct timespec last_warning;
	uint64_t suppressed_warnings;
};

/*
 * Reads the device's config keys and opens its image. A bad key is reported
 * with host->config_error, whose result is returned. dev->fd may be open
 * after a failure too.
 */
int blk_config__load(struct smcore_device *dev);

/* Serves one popped descriptor chain and returns the bytes written to its writable buffers. */
uint32_t blk_request__serve(struct smcore_device *dev, const struct smcore_chain *chain);

/* True if sectors [sector, sector + sectors) lie inside the disk, without overflow. */
static inline bool blk__range_valid(const struct smcore_device *dev, uint64_t sector,
				    uint64_t sectors)
{
	return sector <= dev->capacity && sectors <= dev->capacity - sector;
}

struct iovec;

/*
 * Serves a DISCARD or WRITE_ZEROES request whose segments are the `len`
 * bytes of `segments`; returns the status byte.
 */
uint8_t blk_zero__serve(struct smcore_device *dev, uint32_t type, const struct iovec *segments,
			int count, uint64_t len);

/* Logs a host I/O failure at most once a second and counts the lines it drops. */
void blk__warn(struct smcore_device *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
