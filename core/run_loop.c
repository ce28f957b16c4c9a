/* SPDX-License-Identifier: Apache-2.0 */
/* The vCPU loop: run until an exit, hand the exit to its handler, repeat until the VM stops. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "vm.h"

static void handle_io(struct sm_vcpu *vcpu, struct smcore_exit *exit)
{
	struct sm_vm *vm = vcpu->vm;
	uint8_t *data = exit->io.data;

	/* REP INS/OUTS arrive as `count` accesses of `size` bytes each. */
	for (uint32_t i = 0; i < exit->io.count; i++) {
		io_bus__access(&vm->pio, exit->io.port, data, exit->io.size, exit->io.is_write);
		data += exit->io.size;
	}
}

static void handle_mmio(struct sm_vcpu *vcpu, struct smcore_exit *exit)
{
	io_bus__access(&vcpu->vm->mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len,
		       exit->mmio.is_write);
}

/* Returns 1 while the vCPU should keep running. */
static int handle_exit(struct sm_vcpu *vcpu, struct smcore_exit *exit)
{
	struct sm_vm *vm = vcpu->vm;

	switch (exit->reason) {
	case SMCORE_EXIT_IO:
		handle_io(vcpu, exit);
		return 1;
	case SMCORE_EXIT_MMIO:
		handle_mmio(vcpu, exit);
		return 1;
	case SMCORE_EXIT_INTERRUPTED:
		vm__check_halted(vcpu);
		return 1;
	case SMCORE_EXIT_RESET:
		vm__request_stop(vm, VM_STOP_RESET, "vCPU %u: the guest reset the machine", vcpu->index);
		return 0;
	case SMCORE_EXIT_POWEROFF:
		vm__request_stop(vm, VM_STOP_POWEROFF, "vCPU %u: the guest powered off", vcpu->index);
		return 0;
	case SMCORE_EXIT_SHUTDOWN:
		vm__request_stop(vm, VM_STOP_TRIPLE_FAULT, "vCPU %u: triple fault", vcpu->index);
		return 0;
	case SMCORE_EXIT_HLT:
		vm__request_stop(vm, VM_STOP_POWEROFF, "vCPU %u: halted with interrupts off", vcpu->index);
		return 0;
	case SMCORE_EXIT_INTERNAL_ERROR:
		vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: %s", vcpu->index, exit->error.message);
		return 0;
	default:
		vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: unknown exit reason %u", vcpu->index,
				 exit->reason);
		return 0;
	}
}

void vm__check_halted(struct sm_vcpu *vcpu)
{
	struct sm_vm *vm = vcpu->vm;
	uint64_t round = __atomic_load_n(&vm->halt_round, __ATOMIC_ACQUIRE);
	int all_stopped = 1;

	if (!vm->accel->vcpu_stopped || round == 0)
		return;
	if (vm->accel->vcpu_stopped(vcpu->handle) != 1)
		return;
	__atomic_store_n(&vcpu->stopped_round, round, __ATOMIC_RELEASE);

	/* Only results from the same round count, so a vCPU that has started since does not. */
	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		if (__atomic_load_n(&vm->vcpus[i].stopped_round, __ATOMIC_ACQUIRE) != round)
			all_stopped = 0;
	}
	if (all_stopped)
		vm__request_stop(vm, VM_STOP_POWEROFF,
				 "every vCPU halted with interrupts disabled: the guest halted or powered off");
}

void *vm__vcpu_thread(void *opaque)
{
	struct sm_vcpu *vcpu = opaque;
	struct sm_vm *vm = vcpu->vm;
	struct smcore_exit exit;
	int ret;

	log_debug("vcpu", "vCPU %u: started", vcpu->index);
	while (__atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) == VM_RUNNING) {
		memset(&exit, 0, sizeof(exit));
		ret = vm->accel->run_vcpu(vcpu->handle, &exit);
		if (ret) {
			vm__request_stop(vm, VM_STOP_ERROR, "vCPU %u: run failed: %s", vcpu->index,
					 vm->accel_err.code ? vm->accel_err.message : strerror(-ret));
			break;
		}
		vcpu->exits++;
		if (!handle_exit(vcpu, &exit))
			break;
	}
	log_debug("vcpu", "vCPU %u: stopped after %llu exits", vcpu->index,
		  (unsigned long long)vcpu->exits);
	return NULL;
}
