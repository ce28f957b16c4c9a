/* SPDX-License-Identifier: Apache-2.0 */
#include "mptable.h"

#include <errno.h>
#include <string.h>

#define MP_SPEC_REVISION 4           /* MP specification 1.4 */
#define MP_LAPIC_VERSION 0x14        /* an integrated xAPIC */
#define MP_IOAPIC_VERSION 0x11       /* the 24-pin IOAPIC that KVM emulates */
#define MP_CPU_SIGNATURE 0x600       /* family 6 */
#define MP_CPU_FEATURES ((1u << 0) | (1u << 9)) /* CPUID.1:EDX FPU and APIC */
#define MP_ISA_BUS_ID 0
#define MP_ISA_IRQS 16
#define MP_LINT_ALL 0xff             /* destination "every local APIC" */

enum mp_entry_type {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_IO_INTERRUPT = 3,
	MP_LOCAL_INTERRUPT = 4,
};

enum mp_interrupt_type {
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3,
};

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP     0x02
#define MP_IOAPIC_ENABLED 0x01

struct mp_floating_pointer {
	char signature[4];           /* "_MP_" */
	uint32_t config_table;       /* guest physical address of the configuration table */
	uint8_t length;              /* in 16-byte units */
	uint8_t spec_revision;
	uint8_t checksum;
	uint8_t feature[5];          /* all zero: a configuration table follows, virtual wire mode */
} __attribute__((packed));

struct mp_config_header {
	char signature[4];           /* "PCMP" */
	uint16_t length;             /* header and all base entries */
	uint8_t spec_revision;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_addr;
	uint16_t extended_length;
	uint8_t extended_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type;
	uint8_t bus_id;
	char bus_type[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t addr;
} __attribute__((packed));

/* Both the I/O and the local interrupt assignment entries have this form. */
struct mp_interrupt {
	uint8_t type;
	uint8_t interrupt_type;
	uint16_t flags;              /* 0: polarity and trigger mode conform to the bus */
	uint8_t source_bus;
	uint8_t source_irq;
	uint8_t dest_apic;
	uint8_t dest_pin;
} __attribute__((packed));

_Static_assert(sizeof(struct mp_floating_pointer) == 16, "MP floating pointer size");
_Static_assert(sizeof(struct mp_config_header) == 44, "MP configuration table header size");
_Static_assert(sizeof(struct mp_processor) == 20, "MP processor entry size");
_Static_assert(sizeof(struct mp_bus) == 8, "MP bus entry size");
_Static_assert(sizeof(struct mp_ioapic) == 8, "MP IOAPIC entry size");
_Static_assert(sizeof(struct mp_interrupt) == 8, "MP interrupt entry size");

#define MP_IO_INTERRUPT_COUNT MP_ISA_IRQS
#define MP_LOCAL_INTERRUPT_COUNT 2

static size_t config_table_size(unsigned vcpus)
{
	return sizeof(struct mp_config_header) + vcpus * sizeof(struct mp_processor) +
	       sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
	       (MP_IO_INTERRUPT_COUNT + MP_LOCAL_INTERRUPT_COUNT) * sizeof(struct mp_interrupt);
}

size_t mptable__size(unsigned vcpus)
{
	return sizeof(struct mp_floating_pointer) + config_table_size(vcpus);
}

/* Returns the byte that makes the sum of all `len` bytes zero. */
static uint8_t checksum(const void *data, size_t len)
{
	const uint8_t *bytes = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += bytes[i];
	return (uint8_t)-sum;
}

static uint8_t *write_processors(uint8_t *p, unsigned vcpus)
{
	for (unsigned i = 0; i < vcpus; i++) {
		struct mp_processor cpu = {
			.type = MP_PROCESSOR,
			.apic_id = (uint8_t)i,
			.apic_version = MP_LAPIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE,
			.features = MP_CPU_FEATURES,
		};

		memcpy(p, &cpu, sizeof(cpu));
		p += sizeof(cpu);
	}
	return p;
}

static uint8_t *write_interrupt(uint8_t *p, uint8_t entry_type, uint8_t interrupt_type,
				uint8_t source_irq, uint8_t dest_apic, uint8_t dest_pin)
{
	struct mp_interrupt entry = {
		.type = entry_type,
		.interrupt_type = interrupt_type,
		.source_bus = MP_ISA_BUS_ID,
		.source_irq = source_irq,
		.dest_apic = dest_apic,
		.dest_pin = dest_pin,
	};

	memcpy(p, &entry, sizeof(entry));
	return p + sizeof(entry);
}

/*
 * ISA IRQ n on IOAPIC pin n, IRQ 0 included: that is KVM's default GSI routing
 * for its in-kernel IOAPIC. The PC wiring (IRQ 0 on pin 2) would make Linux
 * find the timer dead on pin 2 and spend boot time probing fallbacks.
 */
static uint8_t *write_io_interrupts(uint8_t *p, uint8_t ioapic_id)
{
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++)
		p = write_interrupt(p, MP_IO_INTERRUPT, MP_INT, irq, ioapic_id, irq);
	return p;
}

static void write_config_table(uint8_t *table, unsigned vcpus)
{
	struct mp_config_header header = {
		.signature = { 'P', 'C', 'M', 'P' },
		.length = (uint16_t)config_table_size(vcpus),
		.spec_revision = MP_SPEC_REVISION,
		.oem_id = { 'S', 'M', 'C', 'O', 'R', 'E', ' ', ' ' },
		.product_id = { 'M', 'I', 'C', 'R', 'O', 'V', 'M', ' ', ' ', ' ', ' ', ' ' },
		.entry_count = (uint16_t)(vcpus + 2 + MP_IO_INTERRUPT_COUNT + MP_LOCAL_INTERRUPT_COUNT),
		.lapic_addr = MPTABLE_LAPIC_ADDR,
	};
	struct mp_bus bus = {
		.type = MP_BUS, .bus_id = MP_ISA_BUS_ID, .bus_type = { 'I', 'S', 'A', ' ', ' ', ' ' },
	};
	struct mp_ioapic ioapic = {
		.type = MP_IOAPIC, .apic_id = (uint8_t)vcpus, .apic_version = MP_IOAPIC_VERSION,
		.flags = MP_IOAPIC_ENABLED, .addr = MPTABLE_IOAPIC_ADDR,
	};
	uint8_t *p = table + sizeof(header);

	p = write_processors(p, vcpus);
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	memcpy(p, &ioapic, sizeof(ioapic));
	p += sizeof(ioapic);
	p = write_io_interrupts(p, ioapic.apic_id);
	p = write_interrupt(p, MP_LOCAL_INTERRUPT, MP_EXTINT, 0, MP_LINT_ALL, 0);
	write_interrupt(p, MP_LOCAL_INTERRUPT, MP_NMI, 0, MP_LINT_ALL, 1);

	memcpy(table, &header, sizeof(header));
	table[offsetof(struct mp_config_header, checksum)] = checksum(table, header.length);
}

int mptable__write(struct guest_memory *mem, uint64_t addr, unsigned vcpus, struct sm_error *err)
{
	struct mp_floating_pointer floating = {
		.signature = { '_', 'M', 'P', '_' },
		.length = sizeof(struct mp_floating_pointer) / 16,
		.spec_revision = MP_SPEC_REVISION,
	};
	size_t size;
	uint8_t *table;

	if (vcpus == 0 || vcpus > MPTABLE_MAX_VCPUS)
		return sm_error__set(err, EINVAL, "MP table: %u vCPUs is invalid: the range is 1 to %d",
				     vcpus, MPTABLE_MAX_VCPUS);

	size = mptable__size(vcpus);
	table = guest_memory__hva(mem, addr, size);
	if (!table || addr + size > UINT32_MAX)
		return sm_error__set(err, EFAULT,
				     "MP table: %zu bytes at guest physical address 0x%llx are not in guest RAM below 4 GiB",
				     size, (unsigned long long)addr);

	memset(table, 0, size);
	write_config_table(table + sizeof(floating), vcpus);
	floating.config_table = (uint32_t)(addr + sizeof(floating));
	floating.checksum = checksum(&floating, sizeof(floating));
	memcpy(table, &floating, sizeof(floating));
	return 0;
}
