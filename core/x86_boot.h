/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The x86-64 Linux boot protocol: boot_params (the zero page), the e820 map,
 * and the vCPU state for a direct entry into the kernel's 64-bit entry point.
 * Field offsets follow Documentation/x86/boot.rst and zero-page.rst of Linux 6.1.
 */
#ifndef SMCORE_X86_BOOT_H
#define SMCORE_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "error.h"
#include "guest_memory.h"

/* Fixed guest physical addresses of the boot structures. The comment at the top of x86_boot.c shows the whole layout. */
#define X86_BOOT_GDT_ADDR         0x500ull
#define X86_BOOT_IDT_ADDR         0x540ull
#define X86_BOOT_TSS_ADDR         0x600ull
#define X86_BOOT_PARAMS_ADDR      0x7000ull
#define X86_BOOT_STACK_TOP        0x8ff0ull
#define X86_BOOT_PML4_ADDR        0x9000ull
#define X86_BOOT_PDPT_ADDR        0xa000ull
#define X86_BOOT_PD_ADDR          0xb000ull   /* four page directories, 0xb000 to 0xefff */
#define X86_BOOT_CMDLINE_ADDR     0x20000ull
#define X86_BOOT_CMDLINE_AREA     0x10000ull  /* bytes reserved for the command line */
#define X86_BOOT_MPTABLE_ADDR     0x9fc00ull
#define X86_BOOT_HIGH_MEMORY      0x100000ull /* 1 MiB: the kernel loads at or above this */

/* GDT selectors. The 64-bit boot protocol requires __BOOT_CS 0x10 and __BOOT_DS 0x18. */
#define X86_BOOT_CS_SELECTOR 0x10
#define X86_BOOT_DS_SELECTOR 0x18
#define X86_BOOT_TR_SELECTOR 0x20

#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX_ENTRIES 128

#define BOOT_HDR_MAGIC      0x53726448u /* "HdrS" read as a little-endian u32 */
#define BOOT_FLAG_MAGIC     0xaa55
#define BOOT_LOADER_UNKNOWN 0xff        /* type_of_loader of a loader without an assigned id */
#define BOOT_LOADFLAG_LOADED_HIGH 0x01
#define BOOT_XLF_KERNEL_64        0x0001
#define BOOT_XLF_CAN_BE_LOADED_ABOVE_4G 0x0002

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* BOOT_E820_RAM or BOOT_E820_RESERVED */
} __attribute__((packed));

/* The setup header, at offset 0x1f1 of both the bzImage file and boot_params. */
struct boot_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;          /* protected-mode code size in 16-byte paragraphs */
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;        /* BOOT_FLAG_MAGIC */
	uint16_t jump;             /* a short jump whose offset byte is the header end minus 0x202 */
	uint32_t header;           /* BOOT_HDR_MAGIC */
	uint16_t version;          /* boot protocol version, major << 8 | minor */
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;     /* maximum command line length without the terminating NUL */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

/* The zero page, with only the fields this loader writes named. */
struct boot_params {
	uint8_t _pad0[0xc0];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t _pad1[0x1e8 - 0xcc];
	uint8_t e820_entries;
	uint8_t _pad2[0x1ef - 0x1e9];
	uint8_t sentinel;
	uint8_t _pad3;
	struct boot_setup_header hdr;
	uint8_t _pad4[0x2d0 - 0x1f1 - sizeof(struct boot_setup_header)];
	struct boot_e820_entry e820_table[BOOT_E820_MAX_ENTRIES];
	uint8_t _pad5[0x1000 - 0x2d0 - BOOT_E820_MAX_ENTRIES * sizeof(struct boot_e820_entry)];
} __attribute__((packed));

_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry size");
_Static_assert(sizeof(struct boot_setup_header) == 0x26c - 0x1f1, "setup header size");
_Static_assert(sizeof(struct boot_params) == 0x1000, "boot_params size");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct boot_params, ext_cmd_line_ptr) == 0x0c8, "ext_cmd_line_ptr");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct boot_params, sentinel) == 0x1ef, "sentinel");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "setup header");
_Static_assert(offsetof(struct boot_params, hdr.syssize) == 0x1f4, "syssize");
_Static_assert(offsetof(struct boot_params, hdr.boot_flag) == 0x1fe, "boot_flag");
_Static_assert(offsetof(struct boot_params, hdr.header) == 0x202, "header");
_Static_assert(offsetof(struct boot_params, hdr.version) == 0x206, "version");
_Static_assert(offsetof(struct boot_params, hdr.type_of_loader) == 0x210, "type_of_loader");
_Static_assert(offsetof(struct boot_params, hdr.loadflags) == 0x211, "loadflags");
_Static_assert(offsetof(struct boot_params, hdr.ramdisk_image) == 0x218, "ramdisk_image");
_Static_assert(offsetof(struct boot_params, hdr.ramdisk_size) == 0x21c, "ramdisk_size");
_Static_assert(offsetof(struct boot_params, hdr.cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(offsetof(struct boot_params, hdr.initrd_addr_max) == 0x22c, "initrd_addr_max");
_Static_assert(offsetof(struct boot_params, hdr.kernel_alignment) == 0x230, "kernel_alignment");
_Static_assert(offsetof(struct boot_params, hdr.xloadflags) == 0x236, "xloadflags");
_Static_assert(offsetof(struct boot_params, hdr.cmdline_size) == 0x238, "cmdline_size");
_Static_assert(offsetof(struct boot_params, hdr.pref_address) == 0x258, "pref_address");
_Static_assert(offsetof(struct boot_params, hdr.init_size) == 0x260, "init_size");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");

struct x86_boot_input {
	const char *kernel_path;        /* for messages */
	const uint8_t *kernel; size_t kernel_size;
	const int *kernel_fd;           /* the open kernel file to map segments from, or NULL to copy */
	const char *cmdline;            /* complete kernel command line */
	const uint8_t *initrd; size_t initrd_size; /* may be NULL/0 */
	unsigned vcpus;
};

/*
 * Load the kernel, write boot_params, the e820 map, the command line, the
 * initrd, the MP table, a GDT and identity-mapped page tables for the first
 * 4 GiB, and fill `regs` for the boot vCPU's first entry in 64-bit mode.
 * Returns 0, or -errno with a message in `err`.
 */
int x86_boot__setup(struct guest_memory *mem, const struct x86_boot_input *in,
		    struct smcore_x86_regs *regs, struct sm_error *err);

/* Fill `entries` (at most `max`) with the e820 map of `mem`. Returns the number of entries written. */
unsigned x86_boot__e820(const struct guest_memory *mem, struct boot_e820_entry *entries, unsigned max);

#endif
