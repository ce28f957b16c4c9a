/* SPDX-License-Identifier: Apache-2.0 */
#include "i8042.h"

#include <string.h>

#define I8042_CMD_PULSE_RESET 0xfe

static void i8042_read(void *opaque, uint64_t offset, void *data, uint32_t size)
{
	/* Data 0 and status 0: output buffer empty and input buffer free, so Linux's wait for the controller ends at once. */
	memset(data, 0, size);
}

static void i8042_write(void *opaque, uint64_t offset, const void *data, uint32_t size)
{
	struct i8042 *controller = opaque;
	uint8_t value = *(const uint8_t *)data;

	if (offset == I8042_COMMAND_PORT - I8042_DATA_PORT && value == I8042_CMD_PULSE_RESET &&
	    controller->reset)
		controller->reset(controller->opaque);
}

/* Registered for ports 0x60 to 0x64; port 0x61 belongs to the in-kernel PIT and never exits. */
const struct io_device_ops i8042_io_ops = {
	.read = i8042_read,
	.write = i8042_write,
};
