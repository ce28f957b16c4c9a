/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
 * finds its vCPUs, its IOAPIC and the routing of the ISA interrupts.
 */
#ifndef SMCORE_MPTABLE_H
#define SMCORE_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "guest_memory.h"

#define MPTABLE_IOAPIC_ADDR 0xfec00000u
#define MPTABLE_LAPIC_ADDR  0xfee00000u
/* APIC ids are 8 bits, 0xff is the broadcast id, and the IOAPIC takes the id after the last vCPU. */
#define MPTABLE_MAX_VCPUS   254

/*
 * Write the floating pointer and, right after it, the configuration table at
 * guest physical `addr`. The table has one processor entry per vCPU (APIC ids
 * 0 to vcpus - 1, the BSP flag on 0), an ISA bus and one IOAPIC with id
 * `vcpus` at MPTABLE_IOAPIC_ADDR. Its I/O interrupt entries cover IOAPIC pins
 * 0 to 15: pin 0 is ExtINT from the 8259, ISA IRQ 0 is on pin 2, and IRQ n is
 * on pin n otherwise. Its local interrupt entries send ExtINT to LINT0 and NMI
 * to LINT1.
 * Returns 0, -EINVAL for 0 or more than MPTABLE_MAX_VCPUS vCPUs, or -EFAULT
 * when the table does not fit in guest RAM below 4 GiB at `addr`.
 */
int mptable__write(struct guest_memory *mem, uint64_t addr, unsigned vcpus, struct sm_error *err);
/* Returns the bytes mptable__write() writes for `vcpus` vCPUs. */
size_t mptable__size(unsigned vcpus);

#endif
