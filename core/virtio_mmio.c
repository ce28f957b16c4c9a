/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-mmio version 2 register block and the device status state machine. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define LOG_SUBSYSTEM "virtio-mmio"

/* The rings are parsed here, so these features are the transport's to offer. */
#define TRANSPORT_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) | \
			    (1ull << VIRTIO_F_INDIRECT_DESC))

struct virtio_mmio_queue {
	struct virtqueue vq;
	bool ready;
};

struct virtio_mmio {
	/* Recursive, so that callbacks run under it may pop and push. */
	pthread_mutex_t lock;
	struct smcore_device_info info;
	struct virtio_mmio_callbacks callbacks;
	const struct guest_memory *mem;
	uint64_t base;
	uint32_t irq;

	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t interrupt_status;
	uint32_t config_generation;
	int irq_level;
	uint64_t interrupts;        /* rises of the interrupt line, for diagnostics */
	uint64_t notifications;     /* QueueNotify writes that reached the VMM */
	struct virtio_mmio_queue *queues;
};

static void update_irq(struct virtio_mmio *t)
{
	int level = t->interrupt_status != 0;

	if (level == t->irq_level)
		return;
	t->irq_level = level;
	if (level)
		t->interrupts++;
	if (t->callbacks.set_irq)
		t->callbacks.set_irq(t->callbacks.opaque, level);
}

static void raise_interrupt(struct virtio_mmio *t, uint32_t cause)
{
	t->interrupt_status |= cause;
	update_irq(t);
}

/* The specification requires a configuration-change interrupt only once DRIVER_OK is set. */
static void set_needs_reset(struct virtio_mmio *t)
{
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
}

static struct virtio_mmio_queue *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->info.queues ? &t->queues[t->queue_sel] : NULL;
}

static void reset_queues(struct virtio_mmio *t)
{
	for (uint32_t i = 0; i < t->info.queues; i++) {
		t->queues[i] = (struct virtio_mmio_queue){ 0 };
		t->queues[i].vq.index = i;
		t->queues[i].vq.size = t->info.queue_max_size;
	}
}

/*
 * Begin a reset under the lock: clear the registers and mark every queue not
 * ready. Pops and pushes then fail, so a device thread that is still serving
 * a request cannot touch the rings again.
 */
static void begin_reset(struct virtio_mmio *t)
{
	t->status = 0;
	t->driver_features = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->queue_sel = 0;
	t->interrupt_status = 0;
	update_irq(t);
	for (uint32_t i = 0; i < t->info.queues; i++)
		t->queues[i].ready = false;
}

/*
 * The second half, without the lock: the device waits for its own threads,
 * which may need the lock to finish, and then the queues forget their rings.
 * The vCPU that wrote the reset is blocked here until it completes.
 */
static void finish_reset(struct virtio_mmio *t)
{
	if (t->callbacks.reset && t->callbacks.reset(t->callbacks.opaque) < 0)
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": reset failed", t->base);
	pthread_mutex_lock(&t->lock);
	reset_queues(t);
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio__create(const struct smcore_device_info *info,
			const struct virtio_mmio_callbacks *callbacks,
			const struct guest_memory *mem, uint64_t base, uint32_t irq,
			struct virtio_mmio **transport, struct sm_error *err)
{
	pthread_mutexattr_t attr;
	struct virtio_mmio *t;
	uint16_t max = info->queue_max_size;

	if (info->queues == 0 || info->queues > UINT16_MAX)
		return sm_error__set(err, EINVAL, "virtio-mmio: invalid queue count %u", info->queues);
	if (max == 0 || max > VIRTQ_MAX_SIZE || (max & (max - 1)))
		return sm_error__set(err, EINVAL, "virtio-mmio: invalid queue size %u, expected a power of two up to %u",
				     max, VIRTQ_MAX_SIZE);
	if (info->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG)
		return sm_error__set(err, EINVAL, "virtio-mmio: config space of %u bytes exceeds the maximum %u",
				     info->config_size, VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG);

	t = calloc(1, sizeof(*t));
	if (!t)
		return sm_error__set(err, ENOMEM, "virtio-mmio: out of memory");
	t->queues = calloc(info->queues, sizeof(*t->queues));
	if (!t->queues) {
		free(t);
		return sm_error__set(err, ENOMEM, "virtio-mmio: out of memory for %u queues", info->queues);
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&t->lock, &attr);
	pthread_mutexattr_destroy(&attr);

	t->info = *info;
	if (callbacks)
		t->callbacks = *callbacks;
	t->mem = mem;
	t->base = base;
	t->irq = irq;
	t->device_features = info->features | TRANSPORT_FEATURES;
	reset_queues(t);
	*transport = t;
	return 0;
}

void virtio_mmio__destroy(struct virtio_mmio *transport)
{
	if (!transport)
		return;
	pthread_mutex_destroy(&transport->lock);
	free(transport->queues);
	free(transport);
}

/* ---- Registers -------------------------------------------------------- */

static uint32_t read_register(struct virtio_mmio *t, uint64_t offset)
{
	struct virtio_mmio_queue *queue = selected_queue(t);

	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->info.virtio_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return (uint32_t)(t->device_features >> (32 * t->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return queue ? t->info.queue_max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return queue ? queue->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": read of unknown or write-only register 0x%" PRIx64,
			  t->base, offset);
		return 0;
	}
}

static bool accept_features(struct virtio_mmio *t)
{
	uint64_t unknown = t->driver_features & ~t->device_features;

	if (unknown) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": driver accepted features 0x%" PRIx64 " that were not offered",
			    t->base, unknown);
		return false;
	}
	if (!(t->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": driver did not accept VIRTIO_F_VERSION_1; legacy drivers are not supported",
			    t->base);
		return false;
	}
	if (t->callbacks.set_features &&
	    t->callbacks.set_features(t->callbacks.opaque, t->driver_features) < 0) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": device rejected features 0x%" PRIx64,
			    t->base, t->driver_features);
		return false;
	}
	return true;
}

/* Returns true when the write began a reset, which the caller finishes without the lock. */
static bool write_status(struct virtio_mmio *t, uint32_t value)
{
	if (value == 0) {
		begin_reset(t);
		return true;
	}
	if ((value & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !accept_features(t))
		value &= ~VIRTIO_STATUS_FEATURES_OK;
	t->status = value | (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	return false;
}

static void activate_queue(struct virtio_mmio *t, struct virtio_mmio_queue *queue)
{
	struct sm_error err = { 0 };

	queue->vq.event_idx = t->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
	if (queue->vq.size > t->info.queue_max_size) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": queue %u size %u exceeds QueueNumMax %u",
			    t->base, queue->vq.index, queue->vq.size, t->info.queue_max_size);
		set_needs_reset(t);
		return;
	}
	if (virtqueue__check_layout(&queue->vq, t->mem, &err) < 0) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": %s", t->base, err.message);
		set_needs_reset(t);
		return;
	}
	virtqueue__reset(&queue->vq);
	queue->ready = true;
}

static void set_half(uint64_t *field, int high, uint32_t value)
{
	int shift = high ? 32 : 0;

	*field = (*field & ~(0xffffffffull << shift)) | ((uint64_t)value << shift);
}

/* QueueNum, QueueReady and the ring addresses of the selected queue. */
static void write_queue_register(struct virtio_mmio *t, uint64_t offset, uint32_t value)
{
	struct virtio_mmio_queue *queue = selected_queue(t);

	if (!queue) {
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": write to register 0x%" PRIx64 " for missing queue %u",
			  t->base, offset, t->queue_sel);
		return;
	}
	if (offset == VIRTIO_MMIO_QUEUE_READY) {
		if (value == 1 && !queue->ready)
			activate_queue(t, queue);
		else if (value == 0)
			queue->ready = false;
		return;
	}
	if (queue->ready) {
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": write to register 0x%" PRIx64 " of ready queue %u ignored",
			  t->base, offset, t->queue_sel);
		return;
	}

	switch (offset) {
	case VIRTIO_MMIO_QUEUE_NUM:
		/* Sizes that do not fit in 16 bits become 0 and fail the check at QueueReady. */
		queue->vq.size = value <= UINT16_MAX ? value : 0;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&queue->vq.desc_gpa, offset == VIRTIO_MMIO_QUEUE_DESC_HIGH, value);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&queue->vq.avail_gpa, offset == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, value);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&queue->vq.used_gpa, offset == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, value);
		break;
	}
}

#define WRITE_RESET (-2) /* write_register() began a reset */

/* Returns the queue to notify after the lock is released, WRITE_RESET, or -1. */
static int write_register(struct virtio_mmio *t, uint64_t offset, uint32_t value)
{
	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = value;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->driver_features_sel <= 1 && !(t->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&t->driver_features, t->driver_features_sel == 1, value);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		write_queue_register(t, offset, value);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		t->notifications++;
		if (value < t->info.queues && t->queues[value].ready)
			return (int)value;
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": notify for queue %u that is not ready",
			  t->base, value);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->interrupt_status &= ~value;
		update_irq(t);
		break;
	case VIRTIO_MMIO_STATUS:
		if (write_status(t, value))
			return WRITE_RESET;
		break;
	default:
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": write of unknown or read-only register 0x%" PRIx64,
			  t->base, offset);
		break;
	}
	return -1;
}

/* Returns false when the access falls outside config_size; then reads return 0. */
static bool config_in_range(struct virtio_mmio *t, uint64_t offset, uint32_t size)
{
	uint64_t config_offset = offset - VIRTIO_MMIO_CONFIG;

	if (config_offset + size <= t->info.config_size)
		return true;
	log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": config access of %u bytes at 0x%" PRIx64 " is outside its %u bytes",
		  t->base, size, config_offset, t->info.config_size);
	return false;
}

static void mmio_read(void *opaque, uint64_t offset, void *data, uint32_t size)
{
	struct virtio_mmio *t = opaque;
	uint32_t value;

	memset(data, 0, size);
	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_in_range(t, offset, size) && t->callbacks.config_read)
			t->callbacks.config_read(t->callbacks.opaque, offset - VIRTIO_MMIO_CONFIG, data, size);
	} else if (size != 4 || offset % 4) {
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": %u-byte read at 0x%" PRIx64 " ignored",
			  t->base, size, offset);
	} else {
		value = read_register(t, offset);
		memcpy(data, &value, sizeof(value));
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t offset, const void *data, uint32_t size)
{
	struct virtio_mmio *t = opaque;
	uint32_t value;
	int notify = -1;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_in_range(t, offset, size) && t->callbacks.config_write)
			t->callbacks.config_write(t->callbacks.opaque, offset - VIRTIO_MMIO_CONFIG, data, size);
	} else if (size != 4 || offset % 4) {
		log_debug(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": %u-byte write at 0x%" PRIx64 " ignored",
			  t->base, size, offset);
	} else {
		memcpy(&value, data, sizeof(value));
		notify = write_register(t, offset, value);
	}
	pthread_mutex_unlock(&t->lock);

	if (notify == WRITE_RESET) {
		finish_reset(t);
		return;
	}
	/* Devices may do long work on a notification, so it runs without the lock. */
	if (notify >= 0 && t->callbacks.queue_notify)
		t->callbacks.queue_notify(t->callbacks.opaque, (uint16_t)notify);
}

const struct io_device_ops virtio_mmio__io_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

/* ---- Device side ------------------------------------------------------ */

uint64_t virtio_mmio__base(const struct virtio_mmio *transport)
{
	return transport->base;
}

uint32_t virtio_mmio__irq(const struct virtio_mmio *transport)
{
	return transport->irq;
}

uint32_t virtio_mmio__status(struct virtio_mmio *transport)
{
	uint32_t status;

	pthread_mutex_lock(&transport->lock);
	status = transport->status;
	pthread_mutex_unlock(&transport->lock);
	return status;
}

uint64_t virtio_mmio__driver_features(struct virtio_mmio *transport)
{
	uint64_t features;

	pthread_mutex_lock(&transport->lock);
	features = transport->driver_features;
	pthread_mutex_unlock(&transport->lock);
	return features;
}

int virtio_mmio__pop(struct virtio_mmio *transport, uint16_t queue, struct smcore_chain *chain,
		     struct smcore_iovec *iov, unsigned max_iov)
{
	struct virtio_mmio_queue *q;
	struct sm_error err = { 0 };
	bool was_broken;
	int ret = -EINVAL;

	pthread_mutex_lock(&transport->lock);
	if (queue >= transport->info.queues || !transport->queues[queue].ready)
		goto out;
	q = &transport->queues[queue];
	was_broken = q->vq.broken;
	ret = virtqueue__pop(&q->vq, transport->mem, chain, iov, max_iov, &err);
	/*
	 * On an empty queue, request a notification from the driver (avail_event
	 * with event index), then pop once more for a buffer that arrived meanwhile.
	 */
	if (ret == 0 && virtqueue__set_notify(&q->vq, transport->mem, true))
		ret = virtqueue__pop(&q->vq, transport->mem, chain, iov, max_iov, &err);
	if (ret < 0 && !was_broken) {
		log_warning(LOG_SUBSYSTEM, "device at 0x%" PRIx64 ": %s, so the driver must reset the device",
			    transport->base, err.message);
		set_needs_reset(transport);
	}
out:
	pthread_mutex_unlock(&transport->lock);
	return ret;
}

int virtio_mmio__push(struct virtio_mmio *transport, uint16_t queue, uint16_t head,
		      uint32_t written_len)
{
	struct virtio_mmio_queue *q;
	uint16_t old_used_idx;
	int ret = -EINVAL;

	pthread_mutex_lock(&transport->lock);
	if (queue >= transport->info.queues || !transport->queues[queue].ready)
		goto out;
	q = &transport->queues[queue];
	old_used_idx = q->vq.used_idx;
	ret = virtqueue__push(&q->vq, transport->mem, head, written_len);
	if (ret == 0 && virtqueue__needs_interrupt(&q->vq, transport->mem, old_used_idx))
		raise_interrupt(transport, VIRTIO_MMIO_INT_VRING);
out:
	pthread_mutex_unlock(&transport->lock);
	return ret;
}

void virtio_mmio__config_changed(struct virtio_mmio *transport)
{
	pthread_mutex_lock(&transport->lock);
	transport->config_generation++;
	raise_interrupt(transport, VIRTIO_MMIO_INT_CONFIG);
	pthread_mutex_unlock(&transport->lock);
}

int virtio_mmio__cmdline(const struct virtio_mmio *transport, char *buf, size_t buf_size)
{
	int len = snprintf(buf, buf_size, "virtio_mmio.device=0x%x@0x%" PRIx64 ":%u",
			   VIRTIO_MMIO_SIZE, transport->base, transport->irq);

	if (len < 0 || (size_t)len >= buf_size)
		return -ENOSPC;
	return len;
}

void virtio_mmio__describe(struct virtio_mmio *transport, char *buf, size_t size)
{
	size_t used;
	int len;

	pthread_mutex_lock(&transport->lock);
	len = snprintf(buf, size, "status 0x%x, interrupt status 0x%x, %" PRIu64 " interrupts, %" PRIu64 " notifications by MMIO exit",
		       transport->status, transport->interrupt_status, transport->interrupts,
		       transport->notifications);
	used = len > 0 && (size_t)len < size ? (size_t)len : size - 1;
	for (uint32_t i = 0; i < transport->info.queues && used + 3 < size; i++) {
		if (!transport->queues[i].ready)
			continue;
		buf[used++] = ';';
		buf[used++] = ' ';
		virtqueue__describe(&transport->queues[i].vq, transport->mem, buf + used, size - used);
		used += strlen(buf + used);
	}
	pthread_mutex_unlock(&transport->lock);
}
