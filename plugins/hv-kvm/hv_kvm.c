// SPDX-License-Identifier: Apache-2.0
/* The plugin descriptor, the accelerator ops table and the small VM-wide ioctls. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hv_kvm.h"

bool kvm__has_cap(int fd, long cap)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, cap) > 0;
}

static int hv_kvm_irq_line(struct smcore_vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

	if (!vm->has_irqchip)
		return vm->host->error(vm->ctx, ENODEV,
				       "cannot drive GSI %u: the VM has no in-kernel irqchip", gsi);
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_IRQ_LINE for GSI %u failed: %s",
				       gsi, strerror(errno));
	return 0;
}

static int hv_kvm_ioeventfd(struct smcore_vm *vm, uint64_t gpa, uint32_t len, int fd, int assign)
{
	struct kvm_ioeventfd ioeventfd = {
		.addr = gpa,
		.len = len,
		.fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioeventfd) < 0)
		return vm->host->error(vm->ctx, errno,
				       "KVM_IOEVENTFD (%s GPA 0x%llx, %u bytes, fd %d) failed: %s",
				       assign ? "assign" : "deassign", (unsigned long long)gpa, len, fd,
				       strerror(errno));
	return 0;
}

static int hv_kvm_irqfd(struct smcore_vm *vm, uint32_t gsi, int fd, int assign)
{
	struct kvm_irqfd irqfd = {
		.fd = fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (!vm->has_irqchip)
		return vm->host->error(vm->ctx, ENODEV,
				       "cannot attach an irqfd to GSI %u: the VM has no in-kernel irqchip",
				       gsi);
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_IRQFD (%s GSI %u, fd %d) failed: %s",
				       assign ? "assign" : "deassign", gsi, fd, strerror(errno));
	return 0;
}

static const struct smcore_accel_ops hv_kvm_ops = {
	.probe = probe__run,
	.create = vm__create,
	.map_memory = vm__map_memory,
	.create_vcpu = vcpu__create,
	.set_regs = vcpu__set_regs,
	.run_vcpu = vcpu__run,
	.kick_vcpu = vcpu__kick,
	.irq_line = hv_kvm_irq_line,
	.save_state = state__save,
	.restore_state = state__restore,
	.destroy_vcpu = vcpu__destroy,
	.destroy = vm__destroy,
	.ioeventfd = hv_kvm_ioeventfd,
	.irqfd = hv_kvm_irqfd,
	.vcpu_stopped = vcpu__stopped,
	.vcpu_where = vcpu__where,
};

SMCORE_PLUGIN = {
	.abi_major = SMCORE_ABI_MAJOR,
	.abi_minor = SMCORE_ABI_MINOR,
	.size = sizeof(struct smcore_plugin_descriptor),
	.kind = SMCORE_PLUGIN_ACCELERATOR,
	.name = "hv-kvm",
	.version = "0.1.0",
	.license = "Apache-2.0",
	.description = "Linux KVM accelerator (x86-64)",
	.ops = &hv_kvm_ops,
	.ops_size = sizeof(hv_kvm_ops),
	.config_keys = NULL,
};
