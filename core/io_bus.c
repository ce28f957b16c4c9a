/* SPDX-License-Identifier: Apache-2.0 */
#include "io_bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void io_bus__init(struct io_bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

void io_bus__destroy(struct io_bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = 0;
}

int io_bus__register(struct io_bus *bus, uint64_t base, uint64_t len, const char *name,
		     const struct io_device_ops *ops, void *opaque)
{
	struct io_range *ranges;

	if (len == 0 || base + len < base)
		return -EINVAL;
	for (unsigned i = 0; i < bus->count; i++) {
		const struct io_range *range = &bus->ranges[i];

		if (base < range->base + range->len && range->base < base + len)
			return -EEXIST;
	}
	ranges = realloc(bus->ranges, (bus->count + 1) * sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	ranges[bus->count++] = (struct io_range){
		.base = base, .len = len, .name = name, .ops = ops, .opaque = opaque,
	};
	bus->ranges = ranges;
	return 0;
}

static struct io_range *find_range(struct io_bus *bus, uint64_t addr, uint32_t size)
{
	for (unsigned i = 0; i < bus->count; i++) {
		struct io_range *range = &bus->ranges[i];

		if (addr >= range->base && addr - range->base < range->len &&
		    size <= range->len - (addr - range->base))
			return range;
	}
	return NULL;
}

bool io_bus__access(struct io_bus *bus, uint64_t addr, void *data, uint32_t size, bool is_write)
{
	struct io_range *range = find_range(bus, addr, size);

	if (!range) {
		__atomic_add_fetch(&bus->unhandled, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, size);
		log_debug(bus->name, "unhandled %s of %u bytes at 0x%llx", is_write ? "write" : "read",
			  size, (unsigned long long)addr);
		return false;
	}
	if (is_write) {
		if (range->ops->write)
			range->ops->write(range->opaque, addr - range->base, data, size);
	} else if (range->ops->read) {
		range->ops->read(range->opaque, addr - range->base, data, size);
	} else {
		memset(data, 0xff, size);
	}
	return true;
}
