/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest-physical layout of the probe guest, shared by probe.c and
 * probe_guest.S. Virtual addresses equal physical ones.
 */
#ifndef HV_KVM_PROBE_LAYOUT_H
#define HV_KVM_PROBE_LAYOUT_H

#define PROBE_MEMORY_SIZE 0x10000
#define PROBE_PML4 0x1000
#define PROBE_PDPT 0x2000
#define PROBE_PD 0x3000
#define PROBE_PT 0x4000
#define PROBE_GDT 0x5000        /* supervisor page: GDT, IDT and TSS */
#define PROBE_IDT 0x5100
#define PROBE_TSS 0x5400
#define PROBE_KERNEL_CODE 0x6000 /* supervisor, read-only */
#define PROBE_KERNEL_STACK 0x7000 /* supervisor, grows down from 0x8000 */
#define PROBE_USER_CODE 0x8000   /* user, read-only */
#define PROBE_USER_STACK 0x9000  /* user, grows down from 0xa000 */
#define PROBE_UNMAPPED 0x1ff000  /* not present in the page table */

#define PROBE_PORT 0x5e0

/* Values the guest writes to PROBE_PORT. */
#define PROBE_SYSCALL_REACHED 0x600d0000 /* ORed with the CS selector read at the SYSCALL target */
#define PROBE_FAULT 0xfa000000           /* ORed with vector << 16, and the error code for #PF */

#define PROBE_SEL_KERNEL_CS 0x08
#define PROBE_SEL_KERNEL_DS 0x10
#define PROBE_SEL_USER_DS 0x1b
#define PROBE_SEL_USER_CS 0x23
#define PROBE_SEL_TSS 0x28

#endif
