/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port I/O and MMIO dispatch: devices register address ranges before the
 * vCPUs start, and the vCPU threads look them up without locks afterwards.
 * Each device serialises its own state.
 */
#ifndef SMCORE_IO_BUS_H
#define SMCORE_IO_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct io_device_ops {
	/* Fill `data` with `size` bytes read at `offset` from the range base. */
	void (*read)(void *opaque, uint64_t offset, void *data, uint32_t size);
	void (*write)(void *opaque, uint64_t offset, const void *data, uint32_t size);
};

struct io_range {
	uint64_t base;
	uint64_t len;
	const char *name;
	const struct io_device_ops *ops;
	void *opaque;
};

struct io_bus {
	const char *name;      /* "pio" or "mmio", for logs */
	struct io_range *ranges;
	unsigned count;
	uint64_t unhandled;    /* accesses no device claimed */
};

void io_bus__init(struct io_bus *bus, const char *name);
void io_bus__destroy(struct io_bus *bus);
/* Register [base, base + len); 0, -EEXIST if it overlaps a range, or -ENOMEM. */
int io_bus__register(struct io_bus *bus, uint64_t base, uint64_t len, const char *name,
		     const struct io_device_ops *ops, void *opaque);
/*
 * Hand one access to the device that owns `addr`. Returns false when no device
 * does; reads from nowhere return all ones, as on a PC bus.
 */
bool io_bus__access(struct io_bus *bus, uint64_t addr, void *data, uint32_t size, bool is_write);

#endif
