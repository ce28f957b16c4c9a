/* SPDX-License-Identifier: Apache-2.0 */
/* Port and MMIO dispatch, including accesses no device owns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "io_bus.h"
#include "rtc.h"

struct recorder {
	uint64_t offset;
	uint32_t size;
	uint8_t written[8];
	int writes;
};

static void record_read(void *opaque, uint64_t offset, void *data, uint32_t size)
{
	memset(data, 0xab, size);
	((struct recorder *)opaque)->offset = offset;
}

static void record_write(void *opaque, uint64_t offset, const void *data, uint32_t size)
{
	struct recorder *recorder = opaque;

	recorder->offset = offset;
	recorder->size = size;
	memcpy(recorder->written, data, size);
	recorder->writes++;
}

static const struct io_device_ops recorder_ops = { .read = record_read, .write = record_write };

static void overlapping_ranges_rejected(void **state)
{
	struct recorder recorder = { 0 };
	struct io_bus bus;

	io_bus__init(&bus, "pio");
	assert_int_equal(io_bus__register(&bus, 0x3f8, 8, "a", &recorder_ops, &recorder), 0);
	assert_int_equal(io_bus__register(&bus, 0x3ff, 1, "b", &recorder_ops, &recorder), -EEXIST);
	assert_int_equal(io_bus__register(&bus, 0x3f0, 9, "c", &recorder_ops, &recorder), -EEXIST);
	assert_int_equal(io_bus__register(&bus, 0x400, 1, "d", &recorder_ops, &recorder), 0);
	assert_int_equal(io_bus__register(&bus, 0x500, 0, "e", &recorder_ops, &recorder), -EINVAL);
	assert_int_equal(io_bus__register(&bus, UINT64_MAX - 1, 4, "f", &recorder_ops, &recorder), -EINVAL);
	io_bus__destroy(&bus);
}

static void access_reaches_device_at_offset(void **state)
{
	struct recorder recorder = { 0 };
	uint32_t value = 0x11223344;
	struct io_bus bus;

	io_bus__init(&bus, "mmio");
	assert_int_equal(io_bus__register(&bus, 0xd0000000, 0x200, "dev", &recorder_ops, &recorder), 0);
	assert_true(io_bus__access(&bus, 0xd0000070, &value, 4, true));
	assert_int_equal(recorder.offset, 0x70);
	assert_int_equal(recorder.size, 4);
	assert_memory_equal(recorder.written, &value, 4);

	value = 0;
	assert_true(io_bus__access(&bus, 0xd00001fc, &value, 4, false));
	assert_int_equal(value, 0xabababab);
	assert_int_equal(recorder.offset, 0x1fc);
	io_bus__destroy(&bus);
}

static void unclaimed_access_reads_ones(void **state)
{
	struct recorder recorder = { 0 };
	uint32_t value = 0;
	struct io_bus bus;

	io_bus__init(&bus, "pio");
	assert_int_equal(io_bus__register(&bus, 0x70, 2, "rtc", &recorder_ops, &recorder), 0);
	assert_false(io_bus__access(&bus, 0x80, &value, 4, false));
	assert_int_equal(value, 0xffffffff);
	/* An access that starts inside a range but runs past its end is not the device's. */
	assert_false(io_bus__access(&bus, 0x71, &value, 4, true));
	assert_int_equal(recorder.writes, 0);
	assert_int_equal(bus.unhandled, 2);
	io_bus__destroy(&bus);
}

static void rtc_reports_bcd_time(void **state)
{
	/* 2026-12-04 21:05:09 UTC, a Friday. */
	int64_t now = 1796418309;

	assert_int_equal(rtc__register(0x00, now), 0x09);
	assert_int_equal(rtc__register(0x02, now), 0x05);
	assert_int_equal(rtc__register(0x04, now), 0x21);
	assert_int_equal(rtc__register(0x06, now), 0x06);
	assert_int_equal(rtc__register(0x07, now), 0x04);
	assert_int_equal(rtc__register(0x08, now), 0x12);
	assert_int_equal(rtc__register(0x09, now), 0x26);
	assert_int_equal(rtc__register(0x32, now), 0x20);
	assert_int_equal(rtc__register(0x0a, now) & 0x80, 0); /* never update-in-progress */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(overlapping_ranges_rejected),
		cmocka_unit_test(access_reaches_device_at_offset),
		cmocka_unit_test(unclaimed_access_reads_ones),
		cmocka_unit_test(rtc_reports_bcd_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
