/* SPDX-License-Identifier: Apache-2.0 */
/* Internal interfaces of the KVM accelerator plugin. */
#ifndef HV_KVM_H
#define HV_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <smcore/plugin.h>

#define HV_KVM_API_VERSION 12

/* Real-time signal that kick_vcpu() sends to a vCPU thread; see vcpu.c. */
#define HV_KVM_KICK_SIGNAL (SIGRTMIN + 4)

struct smcore_vm {
	const struct smcore_host *host;
	struct smcore_ctx *ctx;
	struct smcore_vm_config config;
	int kvm_fd;
	int vm_fd;
	int run_size;            /* KVM_GET_VCPU_MMAP_SIZE */
	int xsave_size;          /* bytes of the XSAVE area, 0 without KVM_CAP_XSAVE */
	bool has_irqchip;
	bool has_xcrs;
	bool has_debugregs;
	struct kvm_cpuid2 *supported_cpuid;
	struct kvm_msr_list *msr_list; /* KVM_GET_MSR_INDEX_LIST */
};

struct smcore_vcpu {
	struct smcore_vm *vm;
	uint32_t index;
	int fd;
	struct kvm_run *run;
	bool exit_pending;       /* an I/O or MMIO exit waits for the next KVM_RUN to complete */
	pthread_t thread;        /* the thread that last called run_vcpu() */
	atomic_bool thread_valid;
};

/* hv_kvm.c */
bool kvm__has_cap(int fd, long cap);

/* cpuid.c */
int cpuid__fetch_supported(struct smcore_vm *vm);
int cpuid__setup(struct smcore_vcpu *vcpu);

/* msr.c */
int msr__fetch_index_list(struct smcore_vm *vm);
bool msr__is_supported(const struct smcore_vm *vm, uint32_t index);
int msr__setup(struct smcore_vcpu *vcpu);
int fpu__setup(struct smcore_vcpu *vcpu);
int lapic__setup(struct smcore_vcpu *vcpu);

/* vcpu.c */
int vcpu__create(struct smcore_vm *vm, uint32_t index, struct smcore_vcpu **vcpu);
int vcpu__set_regs(struct smcore_vcpu *vcpu, const struct smcore_x86_regs *regs);
int vcpu__run(struct smcore_vcpu *vcpu, struct smcore_exit *exit);
void vcpu__kick(struct smcore_vcpu *vcpu);
int vcpu__stopped(struct smcore_vcpu *vcpu);
int vcpu__where(struct smcore_vcpu *vcpu, uint64_t *rip, uint64_t *rflags, int *halted);
int vcpu__complete_pending_exit(struct smcore_vcpu *vcpu);
void vcpu__destroy(struct smcore_vcpu *vcpu);

/* vm.c */
int vm__create(const struct smcore_host *host, struct smcore_ctx *ctx,
	       const struct smcore_vm_config *config, struct smcore_vm **vm);
int vm__map_memory(struct smcore_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva);
void vm__destroy(struct smcore_vm *vm);

/* state.c */
int state__save(struct smcore_vm *vm, struct smcore_vcpu *vcpu, void **blob, size_t *blob_size);
int state__restore(struct smcore_vm *vm, struct smcore_vcpu *vcpu, const void *blob, size_t blob_size);

/* probe.c */
int probe__run(const struct smcore_host *host, struct smcore_ctx *ctx);

#endif
