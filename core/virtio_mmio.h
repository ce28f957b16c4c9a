/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-mmio transport, version 2 (virtio 1.x, modern devices only): one
 * register block per device that the MMIO bus dispatches to, the queues'
 * configuration and the interrupt status. The device model is reached only
 * through the callbacks below, so the transport runs without a plugin.
 */
#ifndef SMCORE_VIRTIO_MMIO_H
#define SMCORE_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "error.h"
#include "guest_memory.h"
#include "io_bus.h"

/* Register offsets from the specification; R and W give the driver's access. */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000 /* R */
#define VIRTIO_MMIO_VERSION             0x004 /* R */
#define VIRTIO_MMIO_DEVICE_ID           0x008 /* R */
#define VIRTIO_MMIO_VENDOR_ID           0x00c /* R */
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010 /* R */
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014 /* W */
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020 /* W */
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024 /* W */
#define VIRTIO_MMIO_QUEUE_SEL           0x030 /* W */
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034 /* R */
#define VIRTIO_MMIO_QUEUE_NUM           0x038 /* W */
#define VIRTIO_MMIO_QUEUE_READY         0x044 /* RW */
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050 /* W */
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060 /* R */
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064 /* W */
#define VIRTIO_MMIO_STATUS              0x070 /* RW */
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080 /* W */
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084 /* W */
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090 /* W */
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094 /* W */
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0 /* W */
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4 /* W */
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc /* R */
#define VIRTIO_MMIO_CONFIG              0x100 /* RW, device-specific */

#define VIRTIO_MMIO_MAGIC     0x74726976u /* "virt" in little-endian */
#define VIRTIO_MMIO_VENDOR    0x52434d53u /* "SMCR" in little-endian, an arbitrary value */
#define VIRTIO_MMIO_SIZE      0x1000u     /* bytes of MMIO space per device */

#define VIRTIO_MMIO_INT_VRING  (1u << 0) /* a used ring was updated */
#define VIRTIO_MMIO_INT_CONFIG (1u << 1) /* the configuration changed */

#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* The device model behind one transport. Every callback is optional, and each receives `opaque`. */
struct virtio_mmio_callbacks {
	void *opaque;
	/* The driver wrote QueueNotify for a ready queue. Called without the transport lock. */
	int (*queue_notify)(void *opaque, uint16_t queue);
	/* The driver wrote 0 to Status. The transport state is already cleared. */
	int (*reset)(void *opaque);
	/* Config space access, with offset + len already checked against config_size. */
	int (*config_read)(void *opaque, uint32_t offset, void *data, uint32_t len);
	int (*config_write)(void *opaque, uint32_t offset, const void *data, uint32_t len);
	/* The driver set FEATURES_OK with `features`. A negative return leaves FEATURES_OK clear. */
	int (*set_features)(void *opaque, uint64_t features);
	/* Drive the device's interrupt line to `level` (0 or 1). */
	void (*set_irq)(void *opaque, int level);
};

struct virtio_mmio; /* opaque */

/*
 * Create a transport at guest physical `base` with interrupt line `irq`. The
 * transport offers info->features plus VIRTIO_F_VERSION_1, EVENT_IDX and
 * INDIRECT_DESC, which it implements itself. `info`, `callbacks` and `mem` are
 * copied or borrowed: `mem` must outlive the transport. Returns 0, or -EINVAL
 * or -ENOMEM with the reason in `err`. Free with virtio_mmio__destroy().
 */
int virtio_mmio__create(const struct smcore_device_info *info,
			const struct virtio_mmio_callbacks *callbacks,
			const struct guest_memory *mem, uint64_t base, uint32_t irq,
			struct virtio_mmio **transport, struct sm_error *err);
void virtio_mmio__destroy(struct virtio_mmio *transport);

/* Register operations for io_bus__register(base, VIRTIO_MMIO_SIZE, ..., transport). */
extern const struct io_device_ops virtio_mmio__io_ops;

uint64_t virtio_mmio__base(const struct virtio_mmio *transport);
uint32_t virtio_mmio__irq(const struct virtio_mmio *transport);
uint32_t virtio_mmio__status(struct virtio_mmio *transport);
/* Features the driver accepted, final once Status has FEATURES_OK. */
uint64_t virtio_mmio__driver_features(struct virtio_mmio *transport);

/*
 * Pop a chain from ready queue `queue`: 1, 0 when empty, or -EINVAL when the
 * queue is not ready or broken. A queue that breaks sets DEVICE_NEEDS_RESET
 * and raises a configuration-change interrupt.
 */
int virtio_mmio__pop(struct virtio_mmio *transport, uint16_t queue, struct smcore_chain *chain,
		     struct smcore_iovec *iov, unsigned max_iov);
/* Return a chain to the driver and raise the interrupt if it asked for one; 0 or -EINVAL. */
int virtio_mmio__push(struct virtio_mmio *transport, uint16_t queue, uint16_t head,
		      uint32_t written_len);
/* Bump ConfigGeneration and raise a configuration-change interrupt. */
void virtio_mmio__config_changed(struct virtio_mmio *transport);

/* Write a summary of the transport and its ready queues, for diagnostics. */
void virtio_mmio__describe(struct virtio_mmio *transport, char *buf, size_t size);

/*
 * Write the Linux command-line fragment `virtio_mmio.device=<size>@<base>:<irq>`
 * for this device into `buf`. Returns its length, or -ENOSPC when it does not fit.
 */
int virtio_mmio__cmdline(const struct virtio_mmio *transport, char *buf, size_t buf_size);

#endif
