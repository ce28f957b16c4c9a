/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues as virtio 1.x defines them (modern layout only). Every
 * value the guest controls is checked before use: a ring that breaks a rule
 * marks the queue broken, and the transport then sets DEVICE_NEEDS_RESET.
 * The caller serialises access to one queue.
 */
#ifndef SMCORE_VIRTQUEUE_H
#define SMCORE_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "error.h"
#include "guest_memory.h"

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY     1u

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Largest split queue size the specification allows. */
#define VIRTQ_MAX_SIZE 32768u

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtqueue {
	uint16_t index;           /* queue number within its device */
	uint16_t size;            /* entries, a power of two up to VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;        /* descriptor table */
	uint64_t avail_gpa;       /* available (driver) ring */
	uint64_t used_gpa;        /* used (device) ring */
	uint16_t last_avail_idx;  /* next available ring entry the device pops */
	uint16_t used_idx;        /* the device's copy of used->idx */
	bool event_idx;           /* VIRTIO_F_EVENT_IDX was negotiated */
	bool broken;
	char broken_reason[160];
};

/* Clear the ring indices and the broken flag. Index, size and addresses stay. */
void virtqueue__reset(struct virtqueue *vq);

/*
 * Check size, alignment and that each ring lies wholly inside guest RAM.
 * Returns 0, or -EINVAL with the reason in `err`. The queue is left unchanged.
 */
int virtqueue__check_layout(const struct virtqueue *vq, const struct guest_memory *mem,
			    struct sm_error *err);

/*
 * Take the next available descriptor chain. Fills `chain` (queue, head, count)
 * and iov[0..count) with host addresses of buffers already checked against
 * guest RAM, readable ones first. Returns 1 with a chain, 0 when the ring is
 * empty, or -EINVAL when the queue is broken: the first such call marks it and
 * writes the reason to `err`. A chain of more than `max_iov` buffers also
 * breaks the queue, so devices pass at least the largest chain they accept.
 */
int virtqueue__pop(struct virtqueue *vq, const struct guest_memory *mem,
		   struct smcore_chain *chain, struct smcore_iovec *iov, unsigned max_iov,
		   struct sm_error *err);

/*
 * Return chain `head` to the driver with `written_len` bytes written to its
 * device-writable buffers. Returns 0, or -EINVAL when the queue is broken, its
 * used ring is not in RAM or `head` is not a descriptor index.
 */
int virtqueue__push(struct virtqueue *vq, const struct guest_memory *mem, uint16_t head,
		    uint32_t written_len);

/*
 * Whether the driver wants an interrupt for the used entries added since
 * used->idx was `old_used_idx`: it honours VIRTQ_AVAIL_F_NO_INTERRUPT, or
 * used_event when VIRTIO_F_EVENT_IDX was negotiated. It returns true when
 * the available ring is not in RAM, because a spare interrupt is harmless.
 */
bool virtqueue__needs_interrupt(const struct virtqueue *vq, const struct guest_memory *mem,
				uint16_t old_used_idx);

/*
 * Ask the driver to notify (or not) when it adds buffers: VIRTQ_USED_F_NO_NOTIFY
 * without event index, avail_event = last_avail_idx with it. After enabling,
 * returns true when buffers arrived meanwhile, so the device pops again
 * instead of waiting for a notification that will not come.
 */
bool virtqueue__set_notify(struct virtqueue *vq, const struct guest_memory *mem, bool enable);

/*
 * Write a one-line summary of the queue for diagnostics: the driver's
 * available index, the device's next index to pop, the used index, and the
 * notification and interrupt hints in the rings.
 */
void virtqueue__describe(const struct virtqueue *vq, const struct guest_memory *mem, char *buf,
			 size_t size);

/* Whether moving an index from `old_idx` to `new_idx` passed `event_idx`, modulo 2^16. */
static inline bool virtqueue__event_crossed(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
