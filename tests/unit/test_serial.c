/* SPDX-License-Identifier: Apache-2.0 */
/* The 8250 UART as Linux's driver probes and drives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serial.h"

struct capture {
	uint8_t bytes[64];
	size_t count;
	int irq_level;
	int irq_changes;
	uint32_t irq;
};

static void capture_output(void *opaque, const uint8_t *data, size_t len)
{
	struct capture *capture = opaque;

	memcpy(capture->bytes + capture->count, data, len);
	capture->count += len;
}

static void capture_irq(void *opaque, uint32_t irq, int level)
{
	struct capture *capture = opaque;

	capture->irq = irq;
	capture->irq_level = level;
	capture->irq_changes++;
}

static uint8_t inb(struct serial *uart, unsigned reg)
{
	uint8_t value = 0;

	serial_io_ops.read(uart, reg, &value, 1);
	return value;
}

static void outb(struct serial *uart, unsigned reg, uint8_t value)
{
	serial_io_ops.write(uart, reg, &value, 1);
}

static int setup(void **state)
{
	static struct serial uart;
	static struct capture capture;

	memset(&capture, 0, sizeof(capture));
	serial__init(&uart, "com1", 4, capture_output, &capture, capture_irq, &capture);
	state[0] = &uart;
	return 0;
}

static int teardown(void **state)
{
	serial__destroy(state[0]);
	return 0;
}

static struct capture *capture_of(struct serial *uart)
{
	return uart->output_opaque;
}

static void transmit_goes_to_output(void **state)
{
	struct serial *uart = state[0];

	outb(uart, 0, 'h');
	outb(uart, 0, 'i');
	assert_int_equal(capture_of(uart)->count, 2);
	assert_memory_equal(capture_of(uart)->bytes, "hi", 2);
	/* The transmitter is always empty: THRE and TEMT in LSR. */
	assert_int_equal(inb(uart, 5) & 0x60, 0x60);
}

static void divisor_latch_hides_thr(void **state)
{
	struct serial *uart = state[0];

	outb(uart, 3, 0x80);        /* DLAB on */
	outb(uart, 0, 0x01);        /* divisor low: 115200 baud */
	outb(uart, 1, 0x00);
	assert_int_equal(inb(uart, 0), 0x01);
	assert_int_equal(inb(uart, 1), 0x00);
	outb(uart, 3, 0x03);        /* DLAB off, 8N1 */
	assert_int_equal(inb(uart, 3), 0x03);
	assert_int_equal(capture_of(uart)->count, 0);
}

static void thre_interrupt_on_enable(void **state)
{
	struct serial *uart = state[0];
	struct capture *capture = capture_of(uart);

	assert_int_equal(inb(uart, 2) & 0x0f, 0x01); /* no interrupt pending */
	outb(uart, 1, 0x02);                         /* enable THRI */
	assert_int_equal(capture->irq_level, 1);
	assert_int_equal(capture->irq, 4);
	assert_int_equal(inb(uart, 2) & 0x0f, 0x02); /* THRE reported ... */
	assert_int_equal(capture->irq_level, 0);     /* ... and acknowledged by the read */
	assert_int_equal(inb(uart, 2) & 0x0f, 0x01);

	/* Re-enabling raises it again, which Linux checks to rule out a THRE bug. */
	outb(uart, 1, 0x00);
	outb(uart, 1, 0x02);
	assert_int_equal(inb(uart, 2) & 0x0f, 0x02);

	/* Each transmitted byte leaves THR empty, which interrupts again. */
	outb(uart, 0, 'x');
	assert_int_equal(capture->irq_level, 1);
	outb(uart, 1, 0x00);
	assert_int_equal(capture->irq_level, 0);
}

static void fifo_reported_after_fcr(void **state)
{
	struct serial *uart = state[0];

	assert_int_equal(inb(uart, 2) & 0xc0, 0x00);
	outb(uart, 2, 0x07); /* enable and clear the FIFOs */
	assert_int_equal(inb(uart, 2) & 0xc0, 0xc0);
}

static void loopback_reflects_modem_lines(void **state)
{
	struct serial *uart = state[0];

	/* Linux's probe: LOOP | OUT2 | RTS must read back as DCD | CTS. */
	outb(uart, 4, 0x1a);
	assert_int_equal(inb(uart, 6) & 0xf0, 0x90);
	outb(uart, 4, 0x1f);
	assert_int_equal(inb(uart, 6) & 0xf0, 0xf0);
	/* Bytes written in loopback mode do not reach the output. */
	outb(uart, 0, 'z');
	assert_int_equal(capture_of(uart)->count, 0);
	outb(uart, 4, 0x0b);
	assert_int_equal(inb(uart, 6) & 0xf0, 0xb0);
}

static void scratch_register_holds_value(void **state)
{
	struct serial *uart = state[0];

	outb(uart, 7, 0x5a);
	assert_int_equal(inb(uart, 7), 0x5a);
	outb(uart, 7, 0xa5);
	assert_int_equal(inb(uart, 7), 0xa5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(transmit_goes_to_output, setup, teardown),
		cmocka_unit_test_setup_teardown(divisor_latch_hides_thr, setup, teardown),
		cmocka_unit_test_setup_teardown(thre_interrupt_on_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(fifo_reported_after_fcr, setup, teardown),
		cmocka_unit_test_setup_teardown(loopback_reflects_modem_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(scratch_register_holds_value, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
