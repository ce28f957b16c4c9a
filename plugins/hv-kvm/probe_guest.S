/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Code of the probe guest. probe.c copies the kernel part to
 * PROBE_KERNEL_CODE and the user part to PROBE_USER_CODE, so both parts use
 * only relative jumps. Ring-0 code is kept short because some nested KVMs
 * emulate it one instruction at a time.
 */
#include "probe_layout.h"

	.section .rodata.hv_kvm_probe, "a"
	.code64

	.balign 16
	.globl probe_kernel_start, probe_kernel_end, probe_syscall_entry
	.globl probe_fault_stubs, probe_page_fault
	.hidden probe_kernel_start, probe_kernel_end, probe_syscall_entry
	.hidden probe_fault_stubs, probe_page_fault
probe_kernel_start:

/* LSTAR: reached at CPL 0 only if SYSCALL works. OUT with IOPL 0 also needs CPL 0. */
probe_syscall_entry:
	mov %cs, %eax
	or $PROBE_SYSCALL_REACHED, %eax
	mov $PROBE_PORT, %dx
	out %eax, %dx
1:	hlt
	jmp 1b

/* #PF: report the error code, CR2 and the stack pointer the TSS gave this handler. */
	.balign 16
probe_page_fault:
	mov (%rsp), %eax
	and $0xffff, %eax
	or $(PROBE_FAULT | (14 << 16)), %eax
	mov $PROBE_PORT, %dx
	out %eax, %dx
	mov %cr2, %rax
	out %eax, %dx
	mov %esp, %eax
	out %eax, %dx
1:	hlt
	jmp 1b

/* Every other exception: one 16-byte stub per vector that reports the vector. */
	.balign 16
probe_fault_stubs:
	.set vector, 0
	.rept 32
	.balign 16
	mov $(PROBE_FAULT | (vector << 16)), %eax
	jmp probe_fault_report
	.set vector, vector + 1
	.endr

probe_fault_report:
	mov $PROBE_PORT, %dx
	out %eax, %dx
1:	hlt
	jmp 1b
probe_kernel_end:

	.balign 16
	.globl probe_user_start, probe_user_end, probe_user_syscall, probe_user_touch
	.hidden probe_user_start, probe_user_end, probe_user_syscall, probe_user_touch
probe_user_start:
probe_user_syscall:
	syscall
	ud2

probe_user_touch:
	mov $PROBE_UNMAPPED, %eax
	mov (%rax), %eax
	ud2
probe_user_end:

	.section .note.GNU-stack, "", @progbits
