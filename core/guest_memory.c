/* SPDX-License-Identifier: Apache-2.0 */
#include "guest_memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_memory__init(struct guest_memory *mem, uint64_t size)
{
	uint64_t low;
	void *base;

	memset(mem, 0, sizeof(*mem));
	if (size == 0 || size % 4096 != 0)
		return -EINVAL;

	base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	madvise(base, size, MADV_MERGEABLE);

	mem->base = base;
	mem->size = size;
	low = size < GUEST_MMIO_HOLE_START ? size : GUEST_MMIO_HOLE_START;
	mem->regions[0] = (struct guest_memory_region){ .gpa = 0, .size = low, .hva = base };
	mem->region_count = 1;
	if (size > low) {
		mem->regions[1] = (struct guest_memory_region){
			.gpa = GUEST_MMIO_HOLE_END, .size = size - low, .hva = mem->base + low,
		};
		mem->region_count = 2;
	}
	return 0;
}

void guest_memory__destroy(struct guest_memory *mem)
{
	if (mem->base)
		munmap(mem->base, mem->size);
	memset(mem, 0, sizeof(*mem));
}

void *guest_memory__hva(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->region_count; i++) {
		const struct guest_memory_region *region = &mem->regions[i];

		/* Written so that no sum can wrap: gpa + len may overflow for hostile values. */
		if (gpa < region->gpa || gpa - region->gpa > region->size)
			continue;
		if (len > region->size - (gpa - region->gpa))
			return NULL;
		return region->hva + (gpa - region->gpa);
	}
	return NULL;
}

int guest_memory__write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_memory__hva(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_memory__read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_memory__hva(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}
