/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest-physical layout of the ring-3 test guests, shared by testvm.c and
 * guest.S. Virtual addresses equal physical ones, except the MMIO window,
 * which lies outside guest RAM.
 */
#ifndef TESTS_KVM_GUEST_LAYOUT_H
#define TESTS_KVM_GUEST_LAYOUT_H

#define GUEST_MEMORY_SIZE 0x200000
#define GUEST_MAX_VCPUS 8

#define GUEST_PML4 0x1000
#define GUEST_PDPT 0x2000
#define GUEST_PD_LOW 0x3000      /* 0 to 1 GiB */
#define GUEST_PT_LOW 0x4000      /* 0 to 2 MiB, 4 KiB pages */
#define GUEST_PD_HOLE 0x5000     /* 3 to 4 GiB, 2 MiB pages */
#define GUEST_GDT 0x6000         /* supervisor: GDT, IDT and one TSS per vCPU */
#define GUEST_IDT 0x6100
#define GUEST_TSS 0x6400         /* + GUEST_TSS_STRIDE per vCPU */
#define GUEST_TSS_STRIDE 0x100
#define GUEST_TSS_LIMIT (104 + 128) /* the I/O bitmap allows ports 0 to 0x3ff */
#define GUEST_KERNEL_CODE 0x7000 /* supervisor, read-only */
#define GUEST_KERNEL_STACKS 0x8000 /* one 4 KiB stack per vCPU */
#define GUEST_USER_CODE 0x10000  /* user, read-only, 16 KiB */
#define GUEST_USER_CODE_SIZE 0x4000
#define GUEST_USER_DATA 0x20000  /* user, writable, 64 KiB; stacks at the top */
#define GUEST_USER_DATA_SIZE 0x10000

#define GUEST_MMIO_BASE 0xd0000000 /* a 2 MiB user-accessible page in the 3-4 GiB hole */

/* Port the kernel stubs write the vector of an unexpected exception to. */
#define GUEST_FAULT_PORT 0xe0

#define GUEST_SEL_KERNEL_CS 0x08
#define GUEST_SEL_KERNEL_DS 0x10
#define GUEST_SEL_USER_DS 0x1b
#define GUEST_SEL_USER_CS 0x23
#define GUEST_SEL_TSS0 0x28      /* + 0x10 per vCPU */

#endif
