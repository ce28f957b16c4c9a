/* SPDX-License-Identifier: Apache-2.0 */
#include "serial.h"

#include <string.h>

/* Register offsets from the base port; DLAB selects the divisor latch at 0 and 1. */
enum {
	UART_RBR_THR = 0, /* read: receive buffer; write: transmit holding */
	UART_IER = 1,     /* read/write: interrupt enable */
	UART_IIR_FCR = 2, /* read: interrupt identification; write: FIFO control */
	UART_LCR = 3,     /* read/write: line control */
	UART_MCR = 4,     /* read/write: modem control */
	UART_LSR = 5,     /* read: line status */
	UART_MSR = 6,     /* read: modem status */
	UART_SCR = 7,     /* read/write: scratch */
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_FIFO_ENABLED 0xc0
#define FCR_ENABLE_FIFO 0x01
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial__init(struct serial *uart, const char *name, uint32_t irq,
		  serial_output_fn output, void *output_opaque,
		  serial_irq_fn set_irq, void *irq_opaque)
{
	memset(uart, 0, sizeof(*uart));
	pthread_mutex_init(&uart->lock, NULL);
	uart->name = name;
	uart->irq = irq;
	uart->output = output;
	uart->output_opaque = output_opaque;
	uart->set_irq = set_irq;
	uart->irq_opaque = irq_opaque;
	uart->mcr = MCR_OUT2;
	uart->dll = 0x0c; /* 9600 baud, the usual reset value */
}

void serial__destroy(struct serial *uart)
{
	pthread_mutex_destroy(&uart->lock);
}

/* Called with the lock held: drive the line from the pending interrupt state. */
static void update_irq(struct serial *uart)
{
	int level = (uart->ier & IER_THRI) && uart->thr_interrupt;

	if (level != uart->irq_level) {
		uart->irq_level = level;
		if (uart->set_irq)
			uart->set_irq(uart->irq_opaque, uart->irq, level);
	}
}

static uint8_t modem_status(const struct serial *uart)
{
	uint8_t mcr = uart->mcr;

	if (!(mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* In loopback mode the modem outputs appear on the modem inputs. */
	return (mcr & MCR_RTS ? MSR_CTS : 0) | (mcr & MCR_DTR ? MSR_DSR : 0) |
	       (mcr & MCR_OUT1 ? MSR_RI : 0) | (mcr & MCR_OUT2 ? MSR_DCD : 0);
}

static uint8_t read_register(struct serial *uart, unsigned reg)
{
	uint8_t iir;

	switch (reg) {
	case UART_RBR_THR:
		return uart->lcr & LCR_DLAB ? uart->dll : 0;
	case UART_IER:
		return uart->lcr & LCR_DLAB ? uart->dlm : uart->ier;
	case UART_IIR_FCR:
		iir = uart->fcr & FCR_ENABLE_FIFO ? IIR_FIFO_ENABLED : 0;
		if ((uart->ier & IER_THRI) && uart->thr_interrupt) {
			/* Reading IIR while it reports THR empty acknowledges that interrupt. */
			uart->thr_interrupt = 0;
			return iir | IIR_THRI;
		}
		return iir | IIR_NO_INT;
	case UART_LCR:
		return uart->lcr;
	case UART_MCR:
		return uart->mcr;
	case UART_LSR:
		/* Transmission is instant, so the transmitter is always empty. */
		return LSR_THRE | LSR_TEMT;
	case UART_MSR:
		return modem_status(uart);
	default:
		return uart->scr;
	}
}

static void write_register(struct serial *uart, unsigned reg, uint8_t value)
{
	switch (reg) {
	case UART_RBR_THR:
		if (uart->lcr & LCR_DLAB) {
			uart->dll = value;
			break;
		}
		/* Looped-back bytes would go to the receiver, which does not exist yet. */
		if (!(uart->mcr & MCR_LOOP) && uart->output)
			uart->output(uart->output_opaque, &value, 1);
		uart->thr_interrupt = 1;
		break;
	case UART_IER:
		if (uart->lcr & LCR_DLAB) {
			uart->dlm = value;
			break;
		}
		/* Enabling THRI while the transmitter is empty raises it at once, as a 16550 does. */
		if (!(uart->ier & IER_THRI) && (value & IER_THRI))
			uart->thr_interrupt = 1;
		uart->ier = value & 0x0f;
		break;
	case UART_IIR_FCR:
		uart->fcr = value;
		break;
	case UART_LCR:
		uart->lcr = value;
		break;
	case UART_MCR:
		uart->mcr = value & 0x1f;
		break;
	case UART_SCR:
		uart->scr = value;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static void serial_read(void *opaque, uint64_t offset, void *data, uint32_t size)
{
	struct serial *uart = opaque;

	memset(data, 0, size);
	pthread_mutex_lock(&uart->lock);
	*(uint8_t *)data = read_register(uart, offset & 7);
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
}

static void serial_write(void *opaque, uint64_t offset, const void *data, uint32_t size)
{
	struct serial *uart = opaque;

	pthread_mutex_lock(&uart->lock);
	write_register(uart, offset & 7, *(const uint8_t *)data);
	update_irq(uart);
	pthread_mutex_unlock(&uart->lock);
}

const struct io_device_ops serial_io_ops = {
	.read = serial_read,
	.write = serial_write,
};
