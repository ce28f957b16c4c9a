/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM: one anonymous host mapping split into at most two guest physical
 * regions, [0, low_end) and [4 GiB, ...), around the 32-bit MMIO hole.
 */
#ifndef SMCORE_GUEST_MEMORY_H
#define SMCORE_GUEST_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MMIO_HOLE_START 0xc0000000ull /* 3 GiB: devices live from here to 4 GiB */
#define GUEST_MMIO_HOLE_END   0x100000000ull

struct guest_memory_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_memory {
	uint8_t *base;      /* host mapping of all guest RAM */
	uint64_t size;      /* total guest RAM in bytes */
	unsigned region_count;
	struct guest_memory_region regions[2];
};

/* Map `size` bytes (a multiple of 4 KiB) of zeroed guest RAM; 0 or -errno. */
int guest_memory__init(struct guest_memory *mem, uint64_t size);
void guest_memory__destroy(struct guest_memory *mem);
/* Host address of [gpa, gpa + len) if it lies inside one region, else NULL. */
void *guest_memory__hva(const struct guest_memory *mem, uint64_t gpa, uint64_t len);
/* Copy to or from guest RAM; 0, or -EFAULT when the range is not all RAM. */
int guest_memory__write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_memory__read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len);

#endif
