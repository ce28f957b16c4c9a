/* SPDX-License-Identifier: Apache-2.0 */
/* Loading an x86-64 Linux kernel (an ELF vmlinux or a bzImage) into guest RAM. */
#ifndef SMCORE_KERNEL_LOADER_H
#define SMCORE_KERNEL_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "guest_memory.h"

#define KERNEL_SETUP_HEADER_OFFSET 0x1f1
#define KERNEL_SETUP_HEADER_MAX    0x7f  /* boot_params bytes 0x1f1 to 0x26f */
#define KERNEL_BZIMAGE_LOAD_ADDR   0x100000ull
#define KERNEL_BZIMAGE_ENTRY_64    0x200 /* offset of the 64-bit entry in the protected-mode code */
#define KERNEL_DEFAULT_INITRD_ADDR_MAX 0x37ffffffu

/* The result of loading a kernel into guest memory. */
struct kernel_image {
	uint64_t entry;             /* guest physical address of the 64-bit entry point */
	uint64_t load_start, load_end; /* guest physical range the kernel occupies */
	int is_bzimage;
	uint8_t setup_header[KERNEL_SETUP_HEADER_MAX]; /* bzImage: the setup header bytes to copy into boot_params at 0x1f1, zero for vmlinux */
	size_t setup_header_size;
	uint32_t initrd_addr_max;   /* from the header, or KERNEL_DEFAULT_INITRD_ADDR_MAX for vmlinux */
};

/*
 * Load an uncompressed ELF64 vmlinux (PT_LOAD segments at p_paddr, entry
 * e_entry) or a bzImage (protected-mode code at 1 MiB, 64-bit entry 0x200
 * bytes in, boot protocol 2.12 or newer with XLF_KERNEL_64) from the bytes
 * `data` of file `path` into `mem`. For a bzImage, load_end also covers the
 * init_size bytes the kernel decompresses itself into.
 * Returns 0; -ENOEXEC for a malformed or unsupported file, -EINVAL for a
 * segment below 1 MiB, -EFBIG when the kernel does not fit in guest RAM; the
 * message names `path` and the problem.
 */
int kernel_loader__load(struct guest_memory *mem, const char *path, const uint8_t *data,
			size_t size, struct kernel_image *image, struct sm_error *err);
/*
 * Load like kernel_loader__load(), where `data` contains the bytes of the open
 * file `fd`. Page-aligned ELF segments are mapped copy-on-write from `fd` over
 * guest RAM instead of copied. Returns as kernel_loader__load().
 */
int kernel_loader__load_file(struct guest_memory *mem, const char *path, int fd,
			     const uint8_t *data, size_t size, struct kernel_image *image,
			     struct sm_error *err);

#endif
