/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test guests. testvm.c copies the kernel part to GUEST_KERNEL_CODE and the
 * user part to GUEST_USER_CODE, so both use only relative addressing. Guests
 * start at CPL 3; the kernel part is a few short exception handlers because
 * ring-0 code may be emulated instruction by instruction on a nested KVM.
 */
#include "guest_layout.h"

	.section .rodata.test_guest, "a"
	.code64

#define GLOBAL(name) .globl name; .hidden name; name:

	.balign 16
GLOBAL(guest_kernel_start)

/* #GP, raised for example by HLT at CPL 3: halt in ring 0, which exits with KVM_EXIT_HLT. */
GLOBAL(guest_gp_handler)
1:	hlt
	jmp 1b

/* Other exceptions: one 16-byte stub per vector that writes the vector to GUEST_FAULT_PORT. */
	.balign 16
GLOBAL(guest_fault_stubs)
	.set vector, 0
	.rept 32
	.balign 16
	mov $vector, %eax
	jmp fault_report
	.set vector, vector + 1
	.endr
fault_report:
	out %eax, $GUEST_FAULT_PORT
1:	hlt
	jmp 1b
GLOBAL(guest_kernel_end)

	.balign 16
GLOBAL(guest_user_start)

/* OUT of a byte, a word and a dword to port 0x10, then REP OUTSB of "hello" to port 0x11. */
GLOBAL(guest_out_sizes)
	mov $0x10, %dx
	mov $0xab, %al
	out %al, %dx
	mov $0xbeef, %ax
	out %ax, %dx
	mov $0xdeadbeef, %eax
	out %eax, %dx
	lea hello(%rip), %rsi
	mov $5, %ecx
	mov $0x11, %dx
	rep outsb
	hlt
hello:	.ascii "hello"

/* IN of a byte, a word and a dword from port 0x20, each echoed to port 0x21. */
GLOBAL(guest_in_echo)
	mov $0x20, %dx
	in %dx, %al
	out %al, $0x21
	in %dx, %ax
	out %ax, $0x21
	in %dx, %eax
	out %eax, $0x21
	hlt

/* MMIO: a dword write, a dword read echoed to port 0x22, then a qword write. */
GLOBAL(guest_mmio)
	mov $GUEST_MMIO_BASE, %ebx
	movl $0x12345678, (%rbx)
	movl 8(%rbx), %eax
	out %eax, $0x22
	movabs $0x1122334455667788, %rax
	mov %rax, 0x10(%rbx)
	hlt

/* HLT at CPL 3 raises #GP. */
GLOBAL(guest_halt)
	hlt

/* An invalid opcode; with an empty IDT it becomes a triple fault. */
GLOBAL(guest_fault)
	ud2

/* Writes EDI to port 0x30, ECX times, then halts. */
GLOBAL(guest_out_loop)
1:	mov %edi, %eax
	out %eax, $0x30
	dec %ecx
	jnz 1b
	hlt

/* Spins at CPL 3 without exits. */
GLOBAL(guest_spin)
1:	inc %rbx
	jmp 1b

/* Counts in EBX and writes the count to port 0x31 after every 2^20 increments. */
GLOBAL(guest_count)
1:	inc %ebx
	test $0xfffff, %ebx
	jnz 1b
	mov %ebx, %eax
	out %eax, $0x31
	jmp 1b

/* CPUID leaves 1 and 0x40000000: EBX, ECX, EDX of each written to port 0x32. */
GLOBAL(guest_cpuid)
	mov $1, %eax
	xor %ecx, %ecx
	cpuid
	mov %ebx, %eax
	out %eax, $0x32
	mov %ecx, %eax
	out %eax, $0x32
	mov %edx, %eax
	out %eax, $0x32
	mov $0x40000000, %eax
	xor %ecx, %ecx
	cpuid
	mov %ebx, %eax
	out %eax, $0x32
	mov %ecx, %eax
	out %eax, $0x32
	mov %edx, %eax
	out %eax, $0x32
	hlt
/*
 * Runs a script of 32-bit MMIO writes at RBX: pairs of quadwords (address,
 * value), ended by address 0. Then writes 1 to port 0x33 and halts.
 */
GLOBAL(guest_mmio_script)
1:	mov (%rbx), %rdi
	test %rdi, %rdi
	jz 2f
	mov 8(%rbx), %eax
	movl %eax, (%rdi)
	add $16, %rbx
	jmp 1b
2:	mov $1, %eax
	out %eax, $0x33
	hlt
GLOBAL(guest_user_end)

	.section .note.GNU-stack, "", @progbits
