// SPDX-License-Identifier: Apache-2.0
/* Model-specific registers, FPU and local APIC of a new vCPU, as a Linux guest expects them at boot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hv_kvm.h"
#include "msr.h"

#define MISC_ENABLE_FAST_STRING (1ull << 0)
#define MTRR_DEF_TYPE_ENABLE (1ull << 11)
#define MTRR_TYPE_WRBACK 6ull

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_DELIVERY_MODE_MASK (7u << 8)
#define APIC_DELIVERY_MODE_NMI (4u << 8)
#define APIC_DELIVERY_MODE_EXTINT (7u << 8)
#define APIC_LVT_MASKED (1u << 16)

#define FPU_CONTROL_WORD 0x37f
#define MXCSR_DEFAULT 0x1f80

int msr__fetch_index_list(struct smcore_vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *list;

	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return vm->host->error(vm->ctx, errno, "KVM_GET_MSR_INDEX_LIST failed: %s",
				       strerror(errno));

	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return vm->host->error(vm->ctx, ENOMEM, "out of memory for the MSR list");
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return vm->host->error(vm->ctx, errno, "KVM_GET_MSR_INDEX_LIST failed: %s",
				       strerror(errno));
	}
	vm->msr_list = list;
	return 0;
}

bool msr__is_supported(const struct smcore_vm *vm, uint32_t index)
{
	for (uint32_t i = 0; i < vm->msr_list->nmsrs; i++) {
		if (vm->msr_list->indices[i] == index)
			return true;
	}
	return false;
}

static void add_msr(struct kvm_msrs *msrs, uint32_t index, uint64_t data)
{
	msrs->entries[msrs->nmsrs].index = index;
	msrs->entries[msrs->nmsrs].data = data;
	msrs->nmsrs++;
}

int msr__setup(struct smcore_vcpu *vcpu)
{
	struct smcore_vm *vm = vcpu->vm;
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[16];
	} buf;
	struct kvm_msrs *msrs = &buf.header;
	int ret;

	memset(&buf, 0, sizeof(buf));
	add_msr(msrs, MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING);
	add_msr(msrs, MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_ENABLE | MTRR_TYPE_WRBACK);
	add_msr(msrs, MSR_IA32_SYSENTER_CS, 0);
	add_msr(msrs, MSR_IA32_SYSENTER_ESP, 0);
	add_msr(msrs, MSR_IA32_SYSENTER_EIP, 0);
	add_msr(msrs, MSR_STAR, 0);
	add_msr(msrs, MSR_LSTAR, 0);
	add_msr(msrs, MSR_CSTAR, 0);
	add_msr(msrs, MSR_SYSCALL_MASK, 0);
	add_msr(msrs, MSR_KERNEL_GS_BASE, 0);
	/* Application processors keep the TSC that KVM synchronised at creation. */
	if (vcpu->index == 0)
		add_msr(msrs, MSR_IA32_TSC, 0);

	ret = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
	if (ret < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_MSRS on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	if ((uint32_t)ret != msrs->nmsrs)
		return vm->host->error(vm->ctx, EINVAL,
				       "KVM_SET_MSRS on vCPU %u rejected MSR 0x%x",
				       vcpu->index, msrs->entries[ret].index);
	return 0;
}

int fpu__setup(struct smcore_vcpu *vcpu)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = FPU_CONTROL_WORD;
	fpu.mxcsr = MXCSR_DEFAULT;
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return vcpu->vm->host->error(vcpu->vm->ctx, errno,
					     "KVM_SET_FPU on vCPU %u failed: %s",
					     vcpu->index, strerror(errno));
	return 0;
}

static void set_lvt(struct kvm_lapic_state *lapic, unsigned int offset, uint32_t mode)
{
	uint32_t value;

	memcpy(&value, &lapic->regs[offset], sizeof(value));
	value &= ~(APIC_DELIVERY_MODE_MASK | APIC_LVT_MASKED);
	value |= mode;
	memcpy(&lapic->regs[offset], &value, sizeof(value));
}

/* LINT0 takes the 8259 PIC output (ExtINT) and LINT1 the NMI line, as on a PC. */
int lapic__setup(struct smcore_vcpu *vcpu)
{
	struct smcore_vm *vm = vcpu->vm;
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_GET_LAPIC on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	set_lvt(&lapic, APIC_LVT_LINT0, APIC_DELIVERY_MODE_EXTINT);
	set_lvt(&lapic, APIC_LVT_LINT1, APIC_DELIVERY_MODE_NMI);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_LAPIC on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	return 0;
}
