/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MP table is parsed here by the byte offsets of the MultiProcessor
 * Specification 1.4, independently of the structs in mptable.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guest_memory.h"
#include "mptable.h"

#define GUEST_RAM (2ull << 20)
#define TABLE_ADDR 0x9fc00ull

struct parsed_mptable {
	unsigned processors;
	uint8_t processor_apic_id[256];
	uint8_t processor_flags[256];
	unsigned buses;
	char bus_type[7];
	unsigned ioapics;
	uint8_t ioapic_id;
	uint8_t ioapic_flags;
	uint32_t ioapic_addr;
	unsigned io_interrupts;
	int pin_type[16];        /* interrupt type per IOAPIC pin, -1 when no entry */
	int pin_source_irq[16];
	unsigned local_interrupts;
	uint8_t lint_type[2];
	uint8_t lint_dest[2];
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return sum;
}

/* Checks both headers and their checksums, then collects the entries. */
static void parse_mptable(const struct guest_memory *mem, uint64_t addr, struct parsed_mptable *out)
{
	const uint8_t *floating = guest_memory__hva(mem, addr, 16);
	const uint8_t *config, *entry, *end;
	uint32_t config_addr;
	uint16_t length, count;

	memset(out, 0, sizeof(*out));
	memset(out->pin_type, -1, sizeof(out->pin_type));

	assert_non_null(floating);
	assert_memory_equal(floating, "_MP_", 4);
	assert_int_equal(floating[8], 1);          /* length in 16-byte units */
	assert_int_equal(floating[9], 4);          /* specification revision 1.4 */
	assert_int_equal(byte_sum(floating, 16), 0);
	assert_int_equal(floating[11], 0);         /* feature byte 1: a configuration table exists */
	config_addr = get32(floating + 4);
	assert_int_equal(config_addr, addr + 16);

	config = guest_memory__hva(mem, config_addr, 44);
	assert_non_null(config);
	assert_memory_equal(config, "PCMP", 4);
	length = get16(config + 4);
	assert_int_equal(config[6], 4);
	config = guest_memory__hva(mem, config_addr, length);
	assert_non_null(config);
	assert_int_equal(byte_sum(config, length), 0);
	assert_int_equal(get32(config + 36), 0xfee00000);
	count = get16(config + 34);

	entry = config + 44;
	end = config + length;
	for (unsigned i = 0; i < count; i++) {
		assert_true(entry < end);
		switch (entry[0]) {
		case 0:
			out->processor_apic_id[out->processors] = entry[1];
			out->processor_flags[out->processors] = entry[3];
			out->processors++;
			entry += 20;
			break;
		case 1:
			memcpy(out->bus_type, entry + 2, 6);
			out->buses++;
			entry += 8;
			break;
		case 2:
			out->ioapic_id = entry[1];
			out->ioapic_flags = entry[3];
			out->ioapic_addr = get32(entry + 4);
			out->ioapics++;
			entry += 8;
			break;
		case 3:
			assert_int_equal(entry[4], 0); /* source bus: the ISA bus */
			assert_int_equal(entry[6], out->ioapic_id);
			assert_true(entry[7] < 16);
			assert_int_equal(out->pin_type[entry[7]], -1);
			out->pin_type[entry[7]] = entry[1];
			out->pin_source_irq[entry[7]] = entry[5];
			out->io_interrupts++;
			entry += 8;
			break;
		case 4:
			assert_true(entry[7] < 2);
			out->lint_type[entry[7]] = entry[1];
			out->lint_dest[entry[7]] = entry[6];
			out->local_interrupts++;
			entry += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u", entry[0]);
		}
	}
	assert_ptr_equal(entry, end);
}

static void check_table(unsigned vcpus)
{
	struct guest_memory mem;
	struct sm_error err = { 0 };
	struct parsed_mptable table;

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(mptable__write(&mem, TABLE_ADDR, vcpus, &err), 0);
	parse_mptable(&mem, TABLE_ADDR, &table);

	assert_int_equal(table.processors, vcpus);
	for (unsigned i = 0; i < vcpus; i++) {
		assert_int_equal(table.processor_apic_id[i], i);
		assert_true(table.processor_flags[i] & 0x01);              /* enabled */
		assert_int_equal(!!(table.processor_flags[i] & 0x02), i == 0); /* BSP */
	}

	assert_int_equal(table.buses, 1);
	assert_string_equal(table.bus_type, "ISA   ");

	assert_int_equal(table.ioapics, 1);
	assert_int_equal(table.ioapic_id, vcpus);
	assert_int_equal(table.ioapic_addr, 0xfec00000);
	assert_true(table.ioapic_flags & 0x01);

	assert_int_equal(table.io_interrupts, 16);
	/* IRQ n on pin n, as KVM routes GSIs to its IOAPIC by default. */
	for (int pin = 0; pin < 16; pin++) {
		assert_int_equal(table.pin_type[pin], 0);
		assert_int_equal(table.pin_source_irq[pin], pin);
	}

	assert_int_equal(table.local_interrupts, 2);
	assert_int_equal(table.lint_type[0], 3);    /* ExtINT on LINT0 */
	assert_int_equal(table.lint_type[1], 1);    /* NMI on LINT1 */
	assert_int_equal(table.lint_dest[0], 0xff);
	assert_int_equal(table.lint_dest[1], 0xff);

	guest_memory__destroy(&mem);
}

static void mptable_one_vcpu(void **state)
{
	check_table(1);
}

static void mptable_two_vcpus(void **state)
{
	check_table(2);
}

static void mptable_eight_vcpus(void **state)
{
	check_table(8);
}

static void mptable_max_vcpus(void **state)
{
	check_table(MPTABLE_MAX_VCPUS);
}

static void mptable_size_matches_entries(void **state)
{
	assert_int_equal(mptable__size(1), 16 + 44 + 20 + 8 + 8 + 16 * 8 + 2 * 8);
	assert_int_equal(mptable__size(8) - mptable__size(1), 7 * 20);
}

static void mptable_rejects_zero_vcpus(void **state)
{
	struct guest_memory mem;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(mptable__write(&mem, TABLE_ADDR, 0, &err), -EINVAL);
	assert_non_null(strstr(err.message, "0 vCPUs is invalid"));
	guest_memory__destroy(&mem);
}

static void mptable_rejects_too_many_vcpus(void **state)
{
	struct guest_memory mem;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(mptable__write(&mem, TABLE_ADDR, MPTABLE_MAX_VCPUS + 1, &err), -EINVAL);
	assert_non_null(strstr(err.message, "255 vCPUs is invalid"));
	guest_memory__destroy(&mem);
}

static void mptable_rejects_address_outside_ram(void **state)
{
	struct guest_memory mem;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(mptable__write(&mem, GUEST_RAM - 64, 1, &err), -EFAULT);
	assert_non_null(strstr(err.message, "not in guest RAM"));
	guest_memory__destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mptable_one_vcpu),
		cmocka_unit_test(mptable_two_vcpus),
		cmocka_unit_test(mptable_eight_vcpus),
		cmocka_unit_test(mptable_max_vcpus),
		cmocka_unit_test(mptable_size_matches_entries),
		cmocka_unit_test(mptable_rejects_zero_vcpus),
		cmocka_unit_test(mptable_rejects_too_many_vcpus),
		cmocka_unit_test(mptable_rejects_address_outside_ram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
