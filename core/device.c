/* SPDX-License-Identifier: Apache-2.0 */
/* Device plugins behind virtio-mmio transports, and the host services they use. */
#define _GNU_SOURCE
#include "device.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "virtio_mmio.h"
#include "vm.h"

/* The ISA IRQs that the legacy devices and Linux's own probing leave free. */
static const uint8_t device_irqs[DEVICE_MAX_COUNT] = { 5, 6, 7, 9, 10, 11, 12, 13, 14, 15 };

struct sm_device {
	struct sm_vm *vm;
	struct sm_plugin *plugin;
	const struct smcore_device_ops *ops;
	struct smcore_device *dev;
	struct smcore_device_info info;
	struct smcore_ctx ctx;
	struct sm_error err;
	struct virtio_mmio *transport;
	int notify_fd;  /* ioeventfd on QueueNotify, or -1 when notifications exit to the VMM */
	int irq_fd;     /* irqfd of the device's IRQ, or -1 when it goes through irq_line */
	char **paths;   /* values returned by config_path, freed with the device */
	size_t path_count;
	uint64_t eventfd_notifications;
};

uint64_t device__mmio_base(size_t index)
{
	return DEVICE_MMIO_BASE + index * VIRTIO_MMIO_SIZE;
}

uint32_t device__irq(size_t index)
{
	return index < DEVICE_MAX_COUNT ? device_irqs[index] : 0;
}

int device__cmdline(size_t count, char *cmdline, size_t size)
{
	size_t used = strlen(cmdline);

	for (size_t i = 0; i < count; i++) {
		int len = snprintf(cmdline + used, size - used, " virtio_mmio.device=0x%x@0x%llx:%u",
				   VIRTIO_MMIO_SIZE, (unsigned long long)device__mmio_base(i), device__irq(i));

		if (len < 0 || (size_t)len >= size - used)
			return -ENOSPC;
		used += (size_t)len;
	}
	return 0;
}

/* ---- Transport callbacks ---------------------------------------------- */

static int notify_device(void *opaque, uint16_t queue)
{
	struct sm_device *device = opaque;

	return device->ops->queue_notify(device->dev, queue);
}

static int reset_device(void *opaque)
{
	struct sm_device *device = opaque;

	return device->ops->reset(device->dev);
}

static int read_config(void *opaque, uint32_t offset, void *data, uint32_t len)
{
	struct sm_device *device = opaque;

	return device->ops->config_read ? device->ops->config_read(device->dev, offset, data, len) : 0;
}

static int write_config(void *opaque, uint32_t offset, const void *data, uint32_t len)
{
	struct sm_device *device = opaque;

	return device->ops->config_write ? device->ops->config_write(device->dev, offset, data, len) : 0;
}

static int set_features(void *opaque, uint64_t features)
{
	struct sm_device *device = opaque;

	return device->ops->set_features ? device->ops->set_features(device->dev, features) : 0;
}

/*
 * The MP table declares the device IRQs edge-triggered, so only a rising
 * level reaches the guest. One irqfd signal per rise therefore gives the
 * same interrupt as raising the line, without holding it.
 */
static void set_irq(void *opaque, int level)
{
	struct sm_device *device = opaque;
	struct sm_vm *vm = device->vm;
	uint64_t increment = 1;
	uint32_t irq = virtio_mmio__irq(device->transport);
	int ret;

	if (device->irq_fd >= 0) {
		if (level && write(device->irq_fd, &increment, sizeof(increment)) != sizeof(increment))
			log_error(device->ctx.name, "cannot signal the irqfd of IRQ %u: %s", irq, strerror(errno));
		return;
	}
	ret = vm->accel->irq_line(vm->handle, irq, level);
	if (ret)
		log_error(device->ctx.name, "cannot set IRQ %u to %d: %s", irq, level, strerror(-ret));
}

/* An ioeventfd fired: the guest wrote QueueNotify without an exit. */
static void notified(void *opaque, int fd, uint32_t events)
{
	struct sm_device *device = opaque;
	uint64_t count;

	(void)events;
	if (read(fd, &count, sizeof(count)) != sizeof(count))
		return;
	__atomic_add_fetch(&device->eventfd_notifications, count, __ATOMIC_RELAXED);
	/* The eventfd does not carry the queue number; a spare notification only makes a device look. */
	for (uint32_t queue = 0; queue < device->info.queues; queue++)
		device->ops->queue_notify(device->dev, (uint16_t)queue);
}

/* ---- Host services for device plugins ---------------------------------- */

const char *device__config_path(struct smcore_ctx *ctx, const char *key)
{
	const struct config_value *found = config__section_value(ctx->section, key);
	const char *value = found ? found->value : NULL;
	struct sm_device *device = ctx->device;
	char *resolved, **paths;

	if (!value || !device)
		return value;
	if (value[0] == '/' || !ctx->config_dir) {
		resolved = strdup(value);
	} else if (asprintf(&resolved, "%s/%s", ctx->config_dir, value) < 0) {
		resolved = NULL;
	}
	paths = resolved ? realloc(device->paths, (device->path_count + 1) * sizeof(*paths)) : NULL;
	if (!paths) {
		free(resolved);
		return NULL;
	}
	device->paths = paths;
	paths[device->path_count++] = resolved;
	return resolved;
}

int device__queue_pop(struct smcore_ctx *ctx, uint16_t queue, struct smcore_chain *chain,
		      struct smcore_iovec *iov, uint32_t max_iov)
{
	if (!ctx->device || !ctx->device->transport)
		return -EINVAL;
	return virtio_mmio__pop(ctx->device->transport, queue, chain, iov, max_iov);
}

int device__queue_push(struct smcore_ctx *ctx, uint16_t queue, uint16_t head, uint32_t written)
{
	if (!ctx->device || !ctx->device->transport)
		return -EINVAL;
	return virtio_mmio__push(ctx->device->transport, queue, head, written);
}

void device__config_changed(struct smcore_ctx *ctx)
{
	if (ctx->device && ctx->device->transport)
		virtio_mmio__config_changed(ctx->device->transport);
}

/* ---- Attaching --------------------------------------------------------- */

/* "FILE:LINE: " for a value, or "FILE: " when it came from --set. */
static void origin(char *buf, size_t size, const char *config_path, int line)
{
	if (line > 0)
		snprintf(buf, size, "%s:%d: ", config_path, line);
	else
		snprintf(buf, size, "%s: ", config_path);
}

static int check_keys(const struct sm_plugin *plugin, const struct config_section *section,
		      const char *config_path, struct sm_error *err)
{
	const struct smcore_config_key *keys = plugin->desc.config_keys;
	char where[PATH_MAX + 32], known[256] = "";
	size_t used = 0;

	for (size_t k = 0; keys && keys[k].name; k++) {
		int len = snprintf(known + used, sizeof(known) - used, "%s%s", k ? ", " : "", keys[k].name);

		if (len > 0 && (size_t)len < sizeof(known) - used)
			used += (size_t)len;
	}
	for (size_t i = 0; i < section->count; i++) {
		const char *key = section->values[i].key;
		int found = strcmp(key, "plugin") == 0;

		for (size_t k = 0; !found && keys && keys[k].name; k++)
			found = strcmp(keys[k].name, key) == 0;
		if (found)
			continue;
		origin(where, sizeof(where), config_path, section->values[i].line);
		return sm_error__set(err, EINVAL, "%sdevice.%s.%s: unknown key for plugin %s (its keys: %s)",
				     where, section->name, key, plugin->desc.name, used ? known : "none");
	}
	return 0;
}

static int load_plugin(struct sm_device *device, const struct plugin_search *search,
		       const struct config_section *section, const char *config_path,
		       struct sm_error *err)
{
	const struct config_value *plugin = config__section_value(section, "plugin");
	char where[PATH_MAX + 32];
	int ret;

	if (!plugin || !plugin->value[0]) {
		origin(where, sizeof(where), config_path, section->line);
		return sm_error__set(err, EINVAL,
				     "%sdevice.%s.plugin: missing (each device section names its plugin, such as plugin = dev-blk)",
				     where, section->name);
	}
	if (strchr(plugin->value, '/')) {
		origin(where, sizeof(where), config_path, plugin->line);
		return sm_error__set(err, EINVAL,
				     "%sdevice.%s.plugin: '%s' is a path; name the plugin, such as dev-blk, and set [machine] plugin_dir or --plugin-path for its directory",
				     where, section->name, plugin->value);
	}
	ret = plugin__find(search, plugin->value, SMCORE_PLUGIN_DEVICE, &device->plugin, err);
	if (ret) {
		origin(where, sizeof(where), config_path, plugin->line);
		sm_error__prefix(err, "%sdevice.%s.plugin", where, section->name);
		return ret;
	}
	device->ops = &device->plugin->ops.device;
	return check_keys(device->plugin, section, config_path, err);
}

static int check_info(const struct sm_device *device, struct sm_error *err)
{
	const struct smcore_device_info *info = &device->info;

	if (info->queues == 0 || info->queues > 64 || info->queue_max_size == 0 ||
	    (info->queue_max_size & (info->queue_max_size - 1)) || info->queue_max_size > 32768)
		return sm_error__set(err, EINVAL,
				     "%s: plugin %s described %u queues of at most %u entries; expected 1 to 64 queues of a power of two up to 32768 entries",
				     device->ctx.name, device->plugin->desc.name, info->queues, info->queue_max_size);
	if (info->config_size > 0x1000 - VIRTIO_MMIO_CONFIG)
		return sm_error__set(err, EINVAL, "%s: plugin %s has %u bytes of config space, more than %u",
				     device->ctx.name, device->plugin->desc.name, info->config_size,
				     0x1000 - VIRTIO_MMIO_CONFIG);
	return 0;
}

/* Queue notifications and interrupts through eventfds where the accelerator offers them. */
static void connect_eventfds(struct sm_device *device)
{
	struct sm_vm *vm = device->vm;
	uint64_t base = virtio_mmio__base(device->transport);
	uint32_t irq = virtio_mmio__irq(device->transport);
	int fd;

	if (vm->accel->ioeventfd && (fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0) {
		if (vm->accel->ioeventfd(vm->handle, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, fd, 1) == 0 &&
		    event_loop__watch(&vm->events, fd, EPOLLIN, notified, device) == 0) {
			device->notify_fd = fd;
		} else {
			vm->accel->ioeventfd(vm->handle, base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, fd, 0);
			close(fd);
		}
	}
	if (vm->accel->irqfd && (fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0) {
		if (vm->accel->irqfd(vm->handle, irq, fd, 1) == 0)
			device->irq_fd = fd;
		else
			close(fd);
	}
	log_debug(device->ctx.name, "at 0x%" PRIx64 ", IRQ %u: notifications %s, interrupts %s", base, irq,
		  device->notify_fd >= 0 ? "by ioeventfd" : "by MMIO exit",
		  device->irq_fd >= 0 ? "by irqfd" : "by IRQ line");
}

int device__create(const struct plugin_search *search, const struct config_section *section,
		   const char *config_path, const char *config_dir, struct sm_device **out,
		   struct sm_error *err)
{
	struct sm_device *device = calloc(1, sizeof(*device));
	int ret;

	*out = NULL;
	if (!device)
		return sm_error__set(err, ENOMEM, "out of memory");
	*device = (struct sm_device){ .notify_fd = -1, .irq_fd = -1 };
	device->ctx = (struct smcore_ctx){
		.name = section->name, .err = &device->err, .section = section,
		.config_path = config_path, .config_dir = config_dir, .device = device,
	};
	ret = load_plugin(device, search, section, config_path, err);
	if (ret)
		goto fail;
	ret = device->ops->realize(&vm_host_services, &device->ctx, &device->dev, &device->info);
	if (ret) {
		device->dev = NULL;
		if (device->err.code)
			sm_error__set(err, -ret, "%s", device->err.message);
		else
			sm_error__set(err, -ret, "device.%s: plugin %s failed to start: %s", section->name,
				      device->plugin->desc.name, strerror(-ret));
		goto fail;
	}
	ret = check_info(device, err);
	if (ret)
		goto fail;
	*out = device;
	return 0;
fail:
	device__destroy(device);
	return ret;
}

int device__attach(struct sm_vm *vm, struct sm_device *device, size_t index, struct sm_error *err)
{
	const char *name = device->ctx.name;
	struct virtio_mmio_callbacks callbacks = {
		.opaque = device, .queue_notify = notify_device, .reset = reset_device,
		.config_read = read_config, .config_write = write_config,
		.set_features = set_features, .set_irq = set_irq,
	};
	struct sm_device **devices;
	int ret;

	if (index >= DEVICE_MAX_COUNT)
		return sm_error__set(err, E2BIG, "device.%s: a VM has at most %u devices", name, DEVICE_MAX_COUNT);
	devices = realloc(vm->devices, (vm->device_count + 1) * sizeof(*devices));
	if (!devices)
		return sm_error__set(err, ENOMEM, "out of memory");
	vm->devices = devices;
	device->vm = vm;
	device->ctx.vm = vm;
	ret = virtio_mmio__create(&device->info, &callbacks, &vm->mem, device__mmio_base(index),
				  device__irq(index), &device->transport, err);
	if (ret)
		goto fail;
	ret = io_bus__register(&vm->mmio, device__mmio_base(index), VIRTIO_MMIO_SIZE, name,
			       &virtio_mmio__io_ops, device->transport);
	if (ret) {
		sm_error__set(err, -ret, "device.%s: cannot place it at 0x%llx: %s", name,
			      (unsigned long long)device__mmio_base(index), strerror(-ret));
		goto fail;
	}
	connect_eventfds(device);
	vm->devices[vm->device_count++] = device;
	log_info(name, "%s, virtio device %u, at 0x%llx IRQ %u", device->plugin->desc.name,
		 device->info.virtio_id, (unsigned long long)device__mmio_base(index), device__irq(index));
	return 0;
fail:
	virtio_mmio__destroy(device->transport);
	device->transport = NULL;
	device->vm = NULL;
	device->ctx.vm = NULL;
	return ret;
}

void device__destroy(struct sm_device *device)
{
	struct sm_vm *vm;

	if (!device)
		return;
	vm = device->vm;
	if (vm && device->notify_fd >= 0) {
		event_loop__unwatch(&vm->events, device->notify_fd);
		if (vm->handle)
			vm->accel->ioeventfd(vm->handle, virtio_mmio__base(device->transport) + VIRTIO_MMIO_QUEUE_NOTIFY,
					     4, device->notify_fd, 0);
		close(device->notify_fd);
	}
	if (device->dev)
		device->ops->destroy(device->dev);
	if (vm && device->irq_fd >= 0) {
		if (vm->handle)
			vm->accel->irqfd(vm->handle, virtio_mmio__irq(device->transport), device->irq_fd, 0);
		close(device->irq_fd);
	}
	virtio_mmio__destroy(device->transport);
	plugin__close(device->plugin);
	for (size_t i = 0; i < device->path_count; i++)
		free(device->paths[i]);
	free(device->paths);
	free(device);
}

void device__log_state(const struct sm_device *device)
{
	char state[1024];

	if (!device->transport)
		return;
	virtio_mmio__describe(device->transport, state, sizeof(state));
	log_warning(device->ctx.name, "%s; %" PRIu64 " notifications by ioeventfd", state,
		    __atomic_load_n(&device->eventfd_notifications, __ATOMIC_RELAXED));
}
