/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One source for every test plugin: the VARIANT_* macro picks what is wrong
 * with it, so each loader rejection has a real shared object to reject.
 */
#include <errno.h>
#include <stddef.h>

#include <smcore/plugin.h>

static int create(const struct smcore_host *host, struct smcore_ctx *ctx,
		  const struct smcore_vm_config *config, struct smcore_vm **vm)
{
	return -ENOSYS;
}

static int map_memory(struct smcore_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	return -ENOSYS;
}

static int create_vcpu(struct smcore_vm *vm, uint32_t index, struct smcore_vcpu **vcpu)
{
	return -ENOSYS;
}

static int set_regs(struct smcore_vcpu *vcpu, const struct smcore_x86_regs *regs)
{
	return -ENOSYS;
}

static int __attribute__((unused)) run_vcpu(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	return -ENOSYS;
}

static void kick_vcpu(struct smcore_vcpu *vcpu)
{
}

static int irq_line(struct smcore_vm *vm, uint32_t gsi, int level)
{
	return -ENOSYS;
}

static int save_state(struct smcore_vm *vm, struct smcore_vcpu *vcpu, void **blob, size_t *size)
{
	return -ENOSYS;
}

static int restore_state(struct smcore_vm *vm, struct smcore_vcpu *vcpu, const void *blob, size_t size)
{
	return -ENOSYS;
}

static void destroy_vcpu(struct smcore_vcpu *vcpu)
{
}

static void destroy(struct smcore_vm *vm)
{
}

static const struct smcore_accel_ops accel_ops __attribute__((used)) = {
	.create = create,
	.map_memory = map_memory,
	.create_vcpu = create_vcpu,
	.set_regs = set_regs,
#ifndef VARIANT_MISSING_CALLBACK
	.run_vcpu = run_vcpu,
#endif
	.kick_vcpu = kick_vcpu,
	.irq_line = irq_line,
	.save_state = save_state,
	.restore_state = restore_state,
	.destroy_vcpu = destroy_vcpu,
	.destroy = destroy,
};

static int realize(const struct smcore_host *host, struct smcore_ctx *ctx,
		   struct smcore_device **dev, struct smcore_device_info *info)
{
	return -ENOSYS;
}

static int queue_notify(struct smcore_device *dev, uint16_t queue)
{
	return -ENOSYS;
}

static int reset(struct smcore_device *dev)
{
	return 0;
}

static int save(struct smcore_device *dev, void **blob, size_t *size)
{
	return -ENOSYS;
}

static int restore(struct smcore_device *dev, const void *blob, size_t size)
{
	return -ENOSYS;
}

static void device_destroy(struct smcore_device *dev)
{
}

static const struct smcore_device_ops device_ops __attribute__((used)) = {
	.realize = realize,
	.queue_notify = queue_notify,
	.reset = reset,
	.save = save,
	.restore = restore,
	.destroy = device_destroy,
};

#ifndef VARIANT_NO_DESCRIPTOR
SMCORE_PLUGIN = {
#ifdef VARIANT_ABI_MAJOR
	.abi_major = SMCORE_ABI_MAJOR + 1,
	.abi_minor = 3,
#else
	.abi_major = SMCORE_ABI_MAJOR,
	.abi_minor = SMCORE_ABI_MINOR,
#endif
#ifdef VARIANT_BIG_DESCRIPTOR
	.size = sizeof(struct smcore_plugin_descriptor) + 64,
#else
	.size = sizeof(struct smcore_plugin_descriptor),
#endif
#if defined(VARIANT_UNKNOWN_KIND)
	.kind = 99,
#elif defined(VARIANT_GOOD_DEVICE)
	.kind = SMCORE_PLUGIN_DEVICE,
#else
	.kind = SMCORE_PLUGIN_ACCELERATOR,
#endif
#ifndef VARIANT_NO_NAME
	.name = PLUGIN_NAME,
#endif
	.version = "1.2.3",
	.license = "Apache-2.0",
	.description = "test plugin for the loader's unit tests",
#ifdef VARIANT_GOOD_DEVICE
	.ops = &device_ops,
	.ops_size = sizeof(device_ops),
#else
	.ops = &accel_ops,
#ifdef VARIANT_BIG_OPS
	.ops_size = sizeof(accel_ops) + 8,
#else
	.ops_size = sizeof(accel_ops),
#endif
#endif
};
#else
/* Exported so the object is a valid shared object with a symbol table, just no descriptor. */
SMCORE_EXPORT int test_plugin_marker = 1;
#endif
