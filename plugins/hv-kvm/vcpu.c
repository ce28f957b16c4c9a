// SPDX-License-Identifier: Apache-2.0
/*
 * vCPU creation, register setup, the KVM_RUN loop and kicks.
 *
 * Kicks use HV_KVM_KICK_SIGNAL (SIGRTMIN + 4) together with
 * kvm_run.immediate_exit. The signal stays blocked in a vCPU thread except
 * inside KVM_RUN, where KVM_SET_SIGNAL_MASK unblocks it, so a kick either
 * interrupts a running guest or, when it lands outside KVM_RUN, is caught by
 * immediate_exit at the next entry. The handler does nothing: the only purpose
 * of the signal is to make KVM_RUN return -EINTR.
 *
 * NOTE: run_vcpu() leaves the kick signal blocked in the calling thread, and
 * kick_vcpu() must not be called after that thread has exited.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hv_kvm.h"

static pthread_once_t kick_handler_once = PTHREAD_ONCE_INIT;
static int kick_handler_error;

static void kick_handler(int signo)
{
	(void)signo;
}

static void install_kick_handler(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = kick_handler;
	sigemptyset(&action.sa_mask);
	if (sigaction(HV_KVM_KICK_SIGNAL, &action, NULL) < 0)
		kick_handler_error = errno;
}

static int setup_vcpu(struct smcore_vcpu *vcpu)
{
	int ret;

	ret = cpuid__setup(vcpu);
	if (ret)
		return ret;
	ret = msr__setup(vcpu);
	if (ret)
		return ret;
	ret = fpu__setup(vcpu);
	if (ret)
		return ret;
	if (vcpu->vm->has_irqchip)
		return lapic__setup(vcpu);
	return 0;
}

int vcpu__create(struct smcore_vm *vm, uint32_t index, struct smcore_vcpu **out)
{
	struct smcore_vcpu *vcpu;
	int ret;

	if (index >= vm->config.vcpus)
		return vm->host->error(vm->ctx, EINVAL,
				       "vCPU index %u is out of range (the VM has %u vCPUs)",
				       index, vm->config.vcpus);
	pthread_once(&kick_handler_once, install_kick_handler);
	if (kick_handler_error)
		return vm->host->error(vm->ctx, kick_handler_error,
				       "cannot install the kick signal handler: %s",
				       strerror(kick_handler_error));

	vcpu = calloc(1, sizeof(*vcpu));
	if (!vcpu)
		return vm->host->error(vm->ctx, ENOMEM, "out of memory for vCPU %u", index);
	vcpu->vm = vm;
	vcpu->index = index;
	atomic_init(&vcpu->thread_valid, false);

	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		ret = vm->host->error(vm->ctx, errno, "KVM_CREATE_VCPU for vCPU %u failed: %s",
				      index, strerror(errno));
		goto err_free;
	}
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		ret = vm->host->error(vm->ctx, errno, "mmap of the run area of vCPU %u failed: %s",
				      index, strerror(errno));
		goto err_close;
	}

	ret = setup_vcpu(vcpu);
	if (ret)
		goto err_unmap;

	*out = vcpu;
	return 0;

err_unmap:
	munmap(vcpu->run, vm->run_size);
err_close:
	close(vcpu->fd);
err_free:
	free(vcpu);
	return ret;
}

static void to_kvm_segment(struct kvm_segment *kvm, const struct smcore_x86_segment *seg)
{
	memset(kvm, 0, sizeof(*kvm));
	kvm->base = seg->base;
	kvm->limit = seg->limit;
	kvm->selector = seg->selector;
	kvm->type = seg->type;
	kvm->present = seg->present;
	kvm->dpl = seg->dpl;
	kvm->db = seg->db;
	kvm->s = seg->s;
	kvm->l = seg->l;
	kvm->g = seg->g;
	kvm->avl = seg->avl;
	kvm->unusable = !seg->present;
}

static void to_kvm_sregs(struct kvm_sregs *sregs, const struct smcore_x86_regs *regs)
{
	to_kvm_segment(&sregs->cs, &regs->cs);
	to_kvm_segment(&sregs->ds, &regs->ds);
	to_kvm_segment(&sregs->es, &regs->es);
	to_kvm_segment(&sregs->fs, &regs->fs);
	to_kvm_segment(&sregs->gs, &regs->gs);
	to_kvm_segment(&sregs->ss, &regs->ss);
	to_kvm_segment(&sregs->tr, &regs->tr);
	to_kvm_segment(&sregs->ldt, &regs->ldt);
	sregs->gdt.base = regs->gdt.base;
	sregs->gdt.limit = regs->gdt.limit;
	sregs->idt.base = regs->idt.base;
	sregs->idt.limit = regs->idt.limit;
	sregs->cr0 = regs->cr0;
	sregs->cr2 = regs->cr2;
	sregs->cr3 = regs->cr3;
	sregs->cr4 = regs->cr4;
	sregs->cr8 = regs->cr8;
	sregs->efer = regs->efer;
}

static void to_kvm_regs(struct kvm_regs *kvm, const struct smcore_x86_regs *regs)
{
	memset(kvm, 0, sizeof(*kvm));
	kvm->rax = regs->rax;
	kvm->rbx = regs->rbx;
	kvm->rcx = regs->rcx;
	kvm->rdx = regs->rdx;
	kvm->rsi = regs->rsi;
	kvm->rdi = regs->rdi;
	kvm->rsp = regs->rsp;
	kvm->rbp = regs->rbp;
	kvm->r8 = regs->r8;
	kvm->r9 = regs->r9;
	kvm->r10 = regs->r10;
	kvm->r11 = regs->r11;
	kvm->r12 = regs->r12;
	kvm->r13 = regs->r13;
	kvm->r14 = regs->r14;
	kvm->r15 = regs->r15;
	kvm->rip = regs->rip;
	kvm->rflags = regs->rflags;
}

int vcpu__set_regs(struct smcore_vcpu *vcpu, const struct smcore_x86_regs *regs)
{
	struct smcore_vm *vm = vcpu->vm;
	struct kvm_sregs sregs;
	struct kvm_regs kvm_regs;

	/* Start from the current sregs so the APIC base and pending interrupts survive. */
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_GET_SREGS on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	to_kvm_sregs(&sregs, regs);
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_SREGS on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));

	to_kvm_regs(&kvm_regs, regs);
	if (ioctl(vcpu->fd, KVM_SET_REGS, &kvm_regs) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_REGS on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	return 0;
}

/* Blocks the kick signal in the calling thread and sets the KVM_RUN signal mask without it. */
static int prepare_thread(struct smcore_vcpu *vcpu)
{
	struct smcore_vm *vm = vcpu->vm;
	struct {
		struct kvm_signal_mask header;
		uint64_t sigset;
	} mask;
	sigset_t kick;
	sigset_t current;
	int ret;

	sigemptyset(&kick);
	sigaddset(&kick, HV_KVM_KICK_SIGNAL);
	ret = pthread_sigmask(SIG_BLOCK, &kick, &current);
	if (ret)
		return vm->host->error(vm->ctx, ret, "blocking the kick signal for vCPU %u failed: %s",
				       vcpu->index, strerror(ret));
	sigdelset(&current, HV_KVM_KICK_SIGNAL);

	/* KVM takes the kernel's 64-bit sigset, which is the first word of glibc's sigset_t. */
	mask.header.len = sizeof(mask.sigset);
	memcpy(&mask.sigset, &current, sizeof(mask.sigset));
	if (ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &mask) < 0)
		return vm->host->error(vm->ctx, errno, "KVM_SET_SIGNAL_MASK on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));

	vcpu->thread = pthread_self();
	atomic_store(&vcpu->thread_valid, true);
	return 0;
}

static void drain_kicks(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, HV_KVM_KICK_SIGNAL);
	while (sigtimedwait(&kick, NULL, &zero) >= 0)
		;
}

static uint64_t read_rip(struct smcore_vcpu *vcpu)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return 0;
	return regs.rip;
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "exit while delivering an event";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected hardware exit reason";
	default:
		return "unknown suberror";
	}
}

static void fill_internal_error(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	struct kvm_run *run = vcpu->run;
	unsigned long long rip = read_rip(vcpu);
	char *msg = exit->error.message;
	size_t len = sizeof(exit->error.message);

	exit->reason = SMCORE_EXIT_INTERNAL_ERROR;
	switch (run->exit_reason) {
	case KVM_EXIT_INTERNAL_ERROR:
		exit->error.code = run->internal.suberror;
		snprintf(msg, len, "KVM internal error on vCPU %u: suberror %u (%s) at RIP 0x%llx, data 0x%llx 0x%llx",
			 vcpu->index, run->internal.suberror, internal_error_name(run->internal.suberror),
			 rip, run->internal.ndata > 0 ? (unsigned long long)run->internal.data[0] : 0ull,
			 run->internal.ndata > 1 ? (unsigned long long)run->internal.data[1] : 0ull);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		exit->error.code = run->fail_entry.hardware_entry_failure_reason;
		snprintf(msg, len, "KVM could not enter vCPU %u: hardware entry failure reason 0x%llx at RIP 0x%llx",
			 vcpu->index, (unsigned long long)run->fail_entry.hardware_entry_failure_reason, rip);
		break;
	default:
		exit->error.code = run->exit_reason;
		snprintf(msg, len, "unhandled KVM exit reason %u on vCPU %u at RIP 0x%llx",
			 run->exit_reason, vcpu->index, rip);
		break;
	}
}

static void translate_system_event(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		exit->reason = SMCORE_EXIT_RESET;
		break;
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		exit->reason = SMCORE_EXIT_POWEROFF;
		break;
	default:
		exit->reason = SMCORE_EXIT_INTERNAL_ERROR;
		exit->error.code = vcpu->run->system_event.type;
		snprintf(exit->error.message, sizeof(exit->error.message),
			 "unhandled KVM system event %u on vCPU %u at RIP 0x%llx",
			 vcpu->run->system_event.type, vcpu->index,
			 (unsigned long long)read_rip(vcpu));
		break;
	}
}

static void translate_exit(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		exit->reason = SMCORE_EXIT_IO;
		exit->io.port = run->io.port;
		exit->io.size = run->io.size;
		exit->io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
		exit->io.count = run->io.count;
		exit->io.data = (uint8_t *)run + run->io.data_offset;
		vcpu->exit_pending = true;
		break;
	case KVM_EXIT_MMIO:
		exit->reason = SMCORE_EXIT_MMIO;
		exit->mmio.gpa = run->mmio.phys_addr;
		exit->mmio.len = run->mmio.len;
		exit->mmio.is_write = run->mmio.is_write;
		exit->mmio.data = run->mmio.data;
		vcpu->exit_pending = true;
		break;
	case KVM_EXIT_HLT:
		exit->reason = SMCORE_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = SMCORE_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		translate_system_event(vcpu, exit);
		break;
	case KVM_EXIT_INTR:
		exit->reason = SMCORE_EXIT_INTERRUPTED;
		break;
	default:
		fill_internal_error(vcpu, exit);
		break;
	}
}

static void finish_interrupted(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	drain_kicks();
	exit->reason = SMCORE_EXIT_INTERRUPTED;
}

int vcpu__run(struct smcore_vcpu *vcpu, struct smcore_exit *exit)
{
	struct smcore_vm *vm = vcpu->vm;
	int ret;

	if (!atomic_load(&vcpu->thread_valid) || !pthread_equal(vcpu->thread, pthread_self())) {
		ret = prepare_thread(vcpu);
		if (ret)
			return ret;
	}

	memset(exit, 0, sizeof(*exit));
	do {
		ret = ioctl(vcpu->fd, KVM_RUN, 0);
	} while (ret < 0 && errno == EAGAIN);
	vcpu->exit_pending = false;

	if (ret < 0) {
		if (errno == EINTR) {
			finish_interrupted(vcpu, exit);
			return 0;
		}
		return vm->host->error(vm->ctx, errno, "KVM_RUN on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	}

	translate_exit(vcpu, exit);
	if (exit->reason == SMCORE_EXIT_INTERRUPTED)
		finish_interrupted(vcpu, exit);
	return 0;
}

#define X86_RFLAGS_IF (1ull << 9)

/* A halted vCPU with interrupts disabled wakes only for an NMI or INIT, which nothing sends. */
int vcpu__stopped(struct smcore_vcpu *vcpu)
{
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp_state) != 0)
		return -errno;
	if (mp_state.mp_state == KVM_MP_STATE_UNINITIALIZED || mp_state.mp_state == KVM_MP_STATE_INIT_RECEIVED)
		return 1; /* an application processor that never got its start-up IPI */
	if (mp_state.mp_state != KVM_MP_STATE_HALTED)
		return 0;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) != 0)
		return -errno;
	return !(regs.rflags & X86_RFLAGS_IF);
}

int vcpu__where(struct smcore_vcpu *vcpu, uint64_t *rip, uint64_t *rflags, int *halted)
{
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) != 0 || ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp_state) != 0)
		return -errno;
	*rip = regs.rip;
	*rflags = regs.rflags;
	*halted = mp_state.mp_state == KVM_MP_STATE_HALTED;
	return 0;
}

void vcpu__kick(struct smcore_vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&vcpu->thread_valid))
		pthread_kill(vcpu->thread, HV_KVM_KICK_SIGNAL);
}

/*
 * KVM finishes an I/O or MMIO instruction (advances RIP, stores read data)
 * only at the next KVM_RUN. Before the state is saved, enter once with
 * immediate_exit set, which completes the instruction and returns -EINTR
 * without running guest code.
 */
int vcpu__complete_pending_exit(struct smcore_vcpu *vcpu)
{
	struct smcore_vm *vm = vcpu->vm;
	uint8_t previous;
	int ret;

	if (!vcpu->exit_pending)
		return 0;

	previous = __atomic_exchange_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	ret = ioctl(vcpu->fd, KVM_RUN, 0);
	__atomic_store_n(&vcpu->run->immediate_exit, previous, __ATOMIC_SEQ_CST);
	if (ret == 0 || errno != EINTR)
		return vm->host->error(vm->ctx, ret == 0 ? EIO : errno,
				       "KVM_RUN to complete the pending exit of vCPU %u failed: %s",
				       vcpu->index, ret == 0 ? "the guest ran" : strerror(errno));
	vcpu->exit_pending = false;
	return 0;
}

void vcpu__destroy(struct smcore_vcpu *vcpu)
{
	if (!vcpu)
		return;
	munmap(vcpu->run, vcpu->vm->run_size);
	close(vcpu->fd);
	free(vcpu);
}
