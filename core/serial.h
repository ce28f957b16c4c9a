/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A 16550A UART as far as Linux's 8250 driver uses it: transmit only, with the
 * transmit-holding-register-empty interrupt, FIFO and loopback detection.
 * Received data is not supported yet: the receive buffer is always empty.
 */
#ifndef SMCORE_SERIAL_H
#define SMCORE_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "io_bus.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_COM2_PORT 0x2f8
#define SERIAL_COM2_IRQ 3
#define SERIAL_PORT_COUNT 8

/* Receives every byte the guest transmits. */
typedef void (*serial_output_fn)(void *opaque, const uint8_t *data, size_t len);
/* Sets the UART's interrupt line to `level`. */
typedef void (*serial_irq_fn)(void *opaque, uint32_t irq, int level);

struct serial {
	pthread_mutex_t lock;
	const char *name;
	uint32_t irq;
	serial_output_fn output;
	void *output_opaque;
	serial_irq_fn set_irq;
	void *irq_opaque;

	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	int thr_interrupt;  /* a THR-empty interrupt is pending until IIR reports it */
	int irq_level;
};

void serial__init(struct serial *uart, const char *name, uint32_t irq,
		  serial_output_fn output, void *output_opaque,
		  serial_irq_fn set_irq, void *irq_opaque);
void serial__destroy(struct serial *uart);

extern const struct io_device_ops serial_io_ops;

#endif
