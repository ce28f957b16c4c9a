/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue parsing. Ring fields are little-endian in virtio 1.x, and
 * the hosts smcore runs on (x86-64, arm64) are little-endian, so fields are
 * read in place. Each descriptor is copied once before it is checked, so the
 * guest cannot change a value between its check and its use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "virtqueue.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ring fields are read as host integers");

#define DESC_SIZE 16u
#define USED_ELEM_SIZE 8u
#define RING_HEADER_SIZE 4u /* flags and idx */

struct ring_view {
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
};

static uint64_t desc_table_size(uint16_t size)
{
	return (uint64_t)DESC_SIZE * size;
}

/* The trailing event field is part of each ring only with VIRTIO_F_EVENT_IDX. */
static uint64_t avail_ring_size(const struct virtqueue *vq)
{
	return RING_HEADER_SIZE + 2ull * vq->size + (vq->event_idx ? 2 : 0);
}

static uint64_t used_ring_size(const struct virtqueue *vq)
{
	return RING_HEADER_SIZE + (uint64_t)USED_ELEM_SIZE * vq->size + (vq->event_idx ? 2 : 0);
}

static uint16_t load16(const uint8_t *field)
{
	return __atomic_load_n((const uint16_t *)field, __ATOMIC_RELAXED);
}

static void store16(uint8_t *field, uint16_t value)
{
	__atomic_store_n((uint16_t *)field, value, __ATOMIC_RELAXED);
}

__attribute__((format(printf, 3, 4)))
static int break_queue(struct virtqueue *vq, struct sm_error *err, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, args);
	va_end(args);
	vq->broken = true;
	return sm_error__set(err, EINVAL, "virtqueue %u: %s", vq->index, vq->broken_reason);
}

void virtqueue__reset(struct virtqueue *vq)
{
	vq->last_avail_idx = 0;
	vq->used_idx = 0;
	vq->broken = false;
	vq->broken_reason[0] = '\0';
}

int virtqueue__check_layout(const struct virtqueue *vq, const struct guest_memory *mem,
			    struct sm_error *err)
{
	if (vq->size == 0 || vq->size > VIRTQ_MAX_SIZE || (vq->size & (vq->size - 1)))
		return sm_error__set(err, EINVAL, "virtqueue %u: invalid size %u, expected a power of two up to %u",
				     vq->index, vq->size, VIRTQ_MAX_SIZE);
	if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
		return sm_error__set(err, EINVAL,
				     "virtqueue %u: misaligned ring (descriptors 0x%llx, available 0x%llx, used 0x%llx)",
				     vq->index, (unsigned long long)vq->desc_gpa,
				     (unsigned long long)vq->avail_gpa, (unsigned long long)vq->used_gpa);
	if (!guest_memory__hva(mem, vq->desc_gpa, desc_table_size(vq->size)))
		return sm_error__set(err, EINVAL, "virtqueue %u: descriptor table at 0x%llx is not in guest RAM",
				     vq->index, (unsigned long long)vq->desc_gpa);
	if (!guest_memory__hva(mem, vq->avail_gpa, avail_ring_size(vq)))
		return sm_error__set(err, EINVAL, "virtqueue %u: available ring at 0x%llx is not in guest RAM",
				     vq->index, (unsigned long long)vq->avail_gpa);
	if (!guest_memory__hva(mem, vq->used_gpa, used_ring_size(vq)))
		return sm_error__set(err, EINVAL, "virtqueue %u: used ring at 0x%llx is not in guest RAM",
				     vq->index, (unsigned long long)vq->used_gpa);
	return 0;
}

/* Resolve all three rings; they are checked on every use because setup may be skipped or stale. */
static int map_rings(struct virtqueue *vq, const struct guest_memory *mem, struct ring_view *view,
		     struct sm_error *err)
{
	struct sm_error layout_error = { 0 };

	if (virtqueue__check_layout(vq, mem, &layout_error) < 0)
		return break_queue(vq, err, "%s", layout_error.message);
	view->desc = guest_memory__hva(mem, vq->desc_gpa, desc_table_size(vq->size));
	view->avail = guest_memory__hva(mem, vq->avail_gpa, avail_ring_size(vq));
	view->used = guest_memory__hva(mem, vq->used_gpa, used_ring_size(vq));
	return 0;
}

struct chain_walk {
	struct smcore_chain *chain;
	struct smcore_iovec *iov;
	unsigned max_iov;
	bool seen_writable;
};

static int add_buffer(struct virtqueue *vq, const struct guest_memory *mem,
		      struct chain_walk *walk, const struct virtq_desc *desc, struct sm_error *err)
{
	bool writable = desc->flags & VIRTQ_DESC_F_WRITE;
	void *hva;

	if (desc->len && desc->addr + desc->len < desc->addr)
		return break_queue(vq, err, "buffer 0x%llx+0x%x wraps around the address space",
				   (unsigned long long)desc->addr, desc->len);
	hva = guest_memory__hva(mem, desc->addr, desc->len);
	if (!hva)
		return break_queue(vq, err, "buffer 0x%llx+0x%x is not in guest RAM",
				   (unsigned long long)desc->addr, desc->len);
	if (!writable && walk->seen_writable)
		return break_queue(vq, err, "readable buffer after a writable one in chain %u",
				   walk->chain->head);
	if (walk->chain->count >= walk->max_iov)
		return break_queue(vq, err, "chain %u has more than %u buffers", walk->chain->head,
				   walk->max_iov);

	walk->seen_writable |= writable;
	walk->iov[walk->chain->count] = (struct smcore_iovec){
		.base = hva, .len = desc->len, .device_writable = writable,
	};
	walk->chain->count++;
	return 0;
}

static int walk_indirect(struct virtqueue *vq, const struct guest_memory *mem,
			 struct chain_walk *walk, const struct virtq_desc *table_desc,
			 struct sm_error *err)
{
	uint32_t entries = table_desc->len / DESC_SIZE;
	const uint8_t *table;
	struct virtq_desc desc;
	uint32_t index = 0;

	if (table_desc->flags & VIRTQ_DESC_F_NEXT)
		return break_queue(vq, err, "indirect descriptor in chain %u also has NEXT set",
				   walk->chain->head);
	if (table_desc->len == 0 || table_desc->len % DESC_SIZE || entries > 65536)
		return break_queue(vq, err, "indirect table length %u is not a non-zero multiple of %u up to 64 KiB entries",
				   table_desc->len, DESC_SIZE);
	/* The table is read with memcpy, and drivers place it wherever kmalloc puts it. */
	table = guest_memory__hva(mem, table_desc->addr, table_desc->len);
	if (!table)
		return break_queue(vq, err, "indirect table 0x%llx+0x%x is not in guest RAM",
				   (unsigned long long)table_desc->addr, table_desc->len);

	for (uint32_t visited = 0;; visited++) {
		if (visited >= entries)
			return break_queue(vq, err, "indirect table of chain %u loops", walk->chain->head);
		memcpy(&desc, table + (uint64_t)index * DESC_SIZE, sizeof(desc));
		if (desc.flags & VIRTQ_DESC_F_INDIRECT)
			return break_queue(vq, err, "indirect descriptor inside the indirect table of chain %u",
					   walk->chain->head);
		if (add_buffer(vq, mem, walk, &desc, err) < 0)
			return -EINVAL;
		if (!(desc.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (desc.next >= entries)
			return break_queue(vq, err, "next index %u is outside the indirect table of %u entries",
					   desc.next, entries);
		index = desc.next;
	}
}

static int walk_chain(struct virtqueue *vq, const struct guest_memory *mem, const struct ring_view *view,
		      struct chain_walk *walk, struct sm_error *err)
{
	uint16_t index = walk->chain->head;
	struct virtq_desc desc;

	for (uint32_t visited = 0;; visited++) {
		if (visited >= vq->size)
			return break_queue(vq, err, "chain %u is longer than the queue size %u (a loop?)",
					   walk->chain->head, vq->size);
		memcpy(&desc, view->desc + (uint64_t)index * DESC_SIZE, sizeof(desc));
		if (desc.flags & VIRTQ_DESC_F_INDIRECT)
			return walk_indirect(vq, mem, walk, &desc, err);
		if (add_buffer(vq, mem, walk, &desc, err) < 0)
			return -EINVAL;
		if (!(desc.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (desc.next >= vq->size)
			return break_queue(vq, err, "next index %u is not below the queue size %u",
					   desc.next, vq->size);
		index = desc.next;
	}
}

int virtqueue__pop(struct virtqueue *vq, const struct guest_memory *mem,
		   struct smcore_chain *chain, struct smcore_iovec *iov, unsigned max_iov,
		   struct sm_error *err)
{
	struct ring_view view;
	struct chain_walk walk = { .chain = chain, .iov = iov, .max_iov = max_iov };
	uint16_t avail_idx, pending, head;

	if (vq->broken)
		return sm_error__set(err, EINVAL, "virtqueue %u: broken: %s", vq->index, vq->broken_reason);
	if (map_rings(vq, mem, &view, err) < 0)
		return -EINVAL;

	avail_idx = load16(view.avail + 2);
	pending = (uint16_t)(avail_idx - vq->last_avail_idx);
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return break_queue(vq, err, "available index %u is %u entries ahead of %u, more than the queue size %u",
				   avail_idx, pending, vq->last_avail_idx, vq->size);
	/* Read the ring entry only after the index that published it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	head = load16(view.avail + RING_HEADER_SIZE + 2u * (vq->last_avail_idx % vq->size));
	if (head >= vq->size)
		return break_queue(vq, err, "head index %u is not below the queue size %u", head, vq->size);

	*chain = (struct smcore_chain){ .queue = vq->index, .head = head, .count = 0, .iov = iov };
	if (walk_chain(vq, mem, &view, &walk, err) < 0)
		return -EINVAL;
	vq->last_avail_idx++;
	return 1;
}

int virtqueue__push(struct virtqueue *vq, const struct guest_memory *mem, uint16_t head,
		    uint32_t written_len)
{
	struct ring_view view;
	struct virtq_used_elem elem = { .id = head, .len = written_len };

	if (vq->broken || head >= vq->size)
		return -EINVAL;
	if (map_rings(vq, mem, &view, NULL) < 0)
		return -EINVAL;

	memcpy(view.used + RING_HEADER_SIZE + (uint64_t)USED_ELEM_SIZE * (vq->used_idx % vq->size),
	       &elem, sizeof(elem));
	/* The driver must see the element before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vq->used_idx++;
	store16(view.used + 2, vq->used_idx);
	return 0;
}

bool virtqueue__needs_interrupt(const struct virtqueue *vq, const struct guest_memory *mem,
				uint16_t old_used_idx)
{
	const uint8_t *avail = guest_memory__hva(mem, vq->avail_gpa, avail_ring_size(vq));

	/* An interrupt the driver did not need is harmless; a missing one hangs it. */
	if (!avail || vq->size == 0)
		return true;
	/* Order the used->idx store before the reads of the driver's suppression fields. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (vq->event_idx) {
		uint16_t used_event = load16(avail + RING_HEADER_SIZE + 2u * vq->size);

		return virtqueue__event_crossed(used_event, vq->used_idx, old_used_idx);
	}
	return !(load16(avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

bool virtqueue__set_notify(struct virtqueue *vq, const struct guest_memory *mem, bool enable)
{
	struct ring_view view;
	uint16_t flags;

	if (vq->broken || map_rings(vq, mem, &view, NULL) < 0)
		return false;

	if (vq->event_idx) {
		/* With event index the device never suppresses through flags; it only moves avail_event. */
		if (enable)
			store16(view.used + RING_HEADER_SIZE + (uint64_t)USED_ELEM_SIZE * vq->size,
				vq->last_avail_idx);
	} else {
		flags = load16(view.used);
		flags = enable ? flags & ~VIRTQ_USED_F_NO_NOTIFY : flags | VIRTQ_USED_F_NO_NOTIFY;
		store16(view.used, flags);
	}
	if (!enable)
		return false;

	/* Order the store above before reading avail->idx, or a new buffer could go unseen. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(view.avail + 2) != vq->last_avail_idx;
}

void virtqueue__describe(const struct virtqueue *vq, const struct guest_memory *mem, char *buf,
			 size_t size)
{
	struct virtqueue copy = *vq;
	struct ring_view view;

	if (map_rings(&copy, mem, &view, NULL) < 0) {
		snprintf(buf, size, "queue %u: rings not in RAM", vq->index);
		return;
	}
	snprintf(buf, size, "queue %u: available %u, popped %u, used %u, avail flags 0x%x, used_event %u, avail_event %u%s",
		 vq->index, load16(view.avail + 2), vq->last_avail_idx, vq->used_idx, load16(view.avail),
		 load16(view.avail + RING_HEADER_SIZE + 2u * vq->size),
		 load16(view.used + RING_HEADER_SIZE + (uint64_t)USED_ELEM_SIZE * vq->size),
		 vq->broken ? ", broken" : "");
}
