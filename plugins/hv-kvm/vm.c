// SPDX-License-Identifier: Apache-2.0
/* VM creation: /dev/kvm checks, the VM file descriptor, memory slots and the in-kernel irqchip. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hv_kvm.h"

/*
 * KVM on Intel needs three pages for the real-mode TSS and one for the EPT
 * identity map below 4 GiB. They sit just under the 256 KiB BIOS area at the
 * top of the 32-bit space, where the boot code places no RAM or MMIO.
 */
#define HV_KVM_IDENTITY_MAP_ADDR 0xfffbc000ull
#define HV_KVM_TSS_ADDR 0xfffbd000ull

struct required_cap {
	long cap;
	const char *name;
};

static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK" },
};

static const struct required_cap irqchip_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
};

static int check_caps(struct smcore_vm *vm, const struct required_cap *caps, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (!kvm__has_cap(vm->kvm_fd, caps[i].cap))
			return vm->host->error(vm->ctx, ENOTSUP,
					       "/dev/kvm lacks the required capability %s",
					       caps[i].name);
	}
	return 0;
}

static int open_kvm(struct smcore_vm *vm)
{
	int version;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vm->host->error(vm->ctx, errno, "cannot open /dev/kvm: %s",
				       strerror(errno));

	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != HV_KVM_API_VERSION) {
		close(vm->kvm_fd);
		return vm->host->error(vm->ctx, ENOTSUP,
				       "KVM_GET_API_VERSION returned %d, expected %d",
				       version, HV_KVM_API_VERSION);
	}
	return 0;
}

static int check_host(struct smcore_vm *vm)
{
	int max_vcpus;
	int ret;

	ret = check_caps(vm, required_caps, sizeof(required_caps) / sizeof(required_caps[0]));
	if (ret)
		return ret;
	if (vm->has_irqchip) {
		ret = check_caps(vm, irqchip_caps, sizeof(irqchip_caps) / sizeof(irqchip_caps[0]));
		if (ret)
			return ret;
	}

	max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->config.vcpus > (uint32_t)max_vcpus)
		return vm->host->error(vm->ctx, EINVAL,
				       "%u vCPUs requested, but KVM allows at most %d",
				       vm->config.vcpus, max_vcpus);

	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return vm->host->error(vm->ctx, errno ? errno : EINVAL,
				       "KVM_GET_VCPU_MMAP_SIZE returned %d", vm->run_size);

	vm->has_xcrs = kvm__has_cap(vm->kvm_fd, KVM_CAP_XCRS);
	vm->has_debugregs = kvm__has_cap(vm->kvm_fd, KVM_CAP_DEBUGREGS);
	vm->xsave_size = 0;
	if (kvm__has_cap(vm->kvm_fd, KVM_CAP_XSAVE))
		vm->xsave_size = sizeof(struct kvm_xsave);
	return 0;
}

static int create_irqchip(struct smcore_vm *vm)
{
	uint64_t identity_map = HV_KVM_IDENTITY_MAP_ADDR;
	struct kvm_pit_config pit = { .flags = 0 };

	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)HV_KVM_TSS_ADDR) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_TSS_ADDR failed: %s",
				       strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_IDENTITY_MAP_ADDR failed: %s",
				       strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_CREATE_IRQCHIP failed: %s",
				       strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_CREATE_PIT2 failed: %s",
				       strerror(errno));
	return 0;
}

static int validate_config(const struct smcore_host *host, struct smcore_ctx *ctx,
			   const struct smcore_vm_config *config)
{
	if (config->size < offsetof(struct smcore_vm_config, flags) + sizeof(config->flags))
		return host->error(ctx, EINVAL, "VM config of %u bytes is too small",
				   config->size);
	if (config->vcpus == 0 || config->vcpus > 255)
		return host->error(ctx, EINVAL, "invalid vCPU count %u (1 to 255)",
				   config->vcpus);
	if (config->cpu_template != SMCORE_CPU_TEMPLATE_HOST &&
	    config->cpu_template != SMCORE_CPU_TEMPLATE_BASELINE)
		return host->error(ctx, EINVAL, "unknown CPU template %u",
				   config->cpu_template);
	return 0;
}

int vm__create(const struct smcore_host *host, struct smcore_ctx *ctx,
	       const struct smcore_vm_config *config, struct smcore_vm **out)
{
	struct smcore_vm *vm;
	int ret;

	ret = validate_config(host, ctx, config);
	if (ret)
		return ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return host->error(ctx, ENOMEM, "out of memory for the VM");
	vm->host = host;
	vm->ctx = ctx;
	memcpy(&vm->config, config,
	       config->size < sizeof(vm->config) ? config->size : sizeof(vm->config));
	vm->config.size = sizeof(vm->config);
	vm->has_irqchip = !(config->flags & SMCORE_VM_NO_IRQCHIP);

	ret = open_kvm(vm);
	if (ret)
		goto err_free;
	ret = check_host(vm);
	if (ret)
		goto err_close_kvm;
	ret = cpuid__fetch_supported(vm);
	if (ret)
		goto err_close_kvm;
	ret = msr__fetch_index_list(vm);
	if (ret)
		goto err_free_cpuid;

	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		ret = host->error(ctx, errno, "KVM_CREATE_VM failed: %s", strerror(errno));
		goto err_free_msrs;
	}

	if (vm->has_irqchip) {
		ret = create_irqchip(vm);
		if (ret)
			goto err_close_vm;
	}

	*out = vm;
	return 0;

err_close_vm:
	close(vm->vm_fd);
err_free_msrs:
	free(vm->msr_list);
err_free_cpuid:
	free(vm->supported_cpuid);
err_close_kvm:
	close(vm->kvm_fd);
err_free:
	free(vm);
	return ret;
}

int vm__map_memory(struct smcore_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return vm->host->error(vm->ctx, errno,
				       "KVM_SET_USER_MEMORY_REGION (slot %u, GPA 0x%llx, %llu bytes) failed: %s",
				       slot, (unsigned long long)gpa, (unsigned long long)size,
				       strerror(errno));
	return 0;
}

void vm__destroy(struct smcore_vm *vm)
{
	if (!vm)
		return;
	close(vm->vm_fd);
	free(vm->msr_list);
	free(vm->supported_cpuid);
	close(vm->kvm_fd);
	free(vm);
}
