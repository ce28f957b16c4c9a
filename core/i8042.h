/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reset line of the i8042 keyboard controller. Linux with `reboot=k`
 * writes 0xfe to port 0x64 to reset the machine, and the VMM ends the run.
 */
#ifndef SMCORE_I8042_H
#define SMCORE_I8042_H

#include "io_bus.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64

struct i8042 {
	void (*reset)(void *opaque); /* called from the vCPU thread that wrote the command */
	void *opaque;
};

extern const struct io_device_ops i8042_io_ops;

#endif
