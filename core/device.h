/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device plugins attached to a VM: one virtio-mmio transport per
 * [device.NAME] section, at a fixed address and IRQ given by its position.
 */
#ifndef SMCORE_DEVICE_H
#define SMCORE_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "config.h"
#include "error.h"
#include "plugin_loader.h"

#define DEVICE_MMIO_BASE 0xd0000000ull
/* Limited by the ISA IRQs that nothing else uses (see device__irq). */
#define DEVICE_MAX_COUNT 10u

struct sm_vm;
struct sm_device; /* opaque */

/* Guest physical address and IRQ of the device at `index` in config order. */
uint64_t device__mmio_base(size_t index);
uint32_t device__irq(size_t index);

/*
 * Append " virtio_mmio.device=..." for `count` devices to `cmdline`, a buffer
 * of `size` bytes. Returns 0 or -ENOSPC.
 */
int device__cmdline(size_t count, char *cmdline, size_t size);

/*
 * Load the plugin that `section` names with its `plugin` key, check the
 * section's keys against the ones the plugin declares and realize the
 * device. `config_path` and `config_dir` locate the file for messages and
 * relative paths; `section` and both strings must outlive the device.
 * Returns 0 or -errno; a bad key or value in the section is -EINVAL (or
 * -ENOENT for a missing plugin) with a "FILE:LINE: device.NAME..." message.
 */
int device__create(const struct plugin_search *search, const struct config_section *section,
		   const char *config_path, const char *config_dir, struct sm_device **device,
		   struct sm_error *err);

/*
 * Put the device's transport on the VM's MMIO bus as device number `index`,
 * with notifications and interrupts through eventfds where the accelerator
 * offers them. On success the VM owns the device and frees it in
 * vm__destroy(); on failure the caller still owns it. Returns 0 or -errno.
 */
int device__attach(struct sm_vm *vm, struct sm_device *device, size_t index, struct sm_error *err);

/* Host services for device plugins (see struct smcore_host). */
const char *device__config_path(struct smcore_ctx *ctx, const char *key);
int device__queue_pop(struct smcore_ctx *ctx, uint16_t queue, struct smcore_chain *chain,
		      struct smcore_iovec *iov, uint32_t max_iov);
int device__queue_push(struct smcore_ctx *ctx, uint16_t queue, uint16_t head, uint32_t written);
void device__config_changed(struct smcore_ctx *ctx);

/* Log the transport's registers and rings, to show where a stuck guest waits. */
void device__log_state(const struct sm_device *device);

/* Stop a device and free it, its transport and its plugin. */
void device__destroy(struct sm_device *device);

#endif
