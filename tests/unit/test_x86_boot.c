/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_memory.h"
#include "x86_boot.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define KERNEL_PATH "/boot/test-kernel"
#define CMDLINE "console=ttyS0 reboot=t panic=-1"

/* ---- Fixtures --------------------------------------------------------- */

#include "kernel_fixtures.h"

static const struct boot_params *boot_params(const struct guest_memory *mem)
{
	const struct boot_params *params = guest_memory__hva(mem, X86_BOOT_PARAMS_ADDR, sizeof(*params));

	assert_non_null(params);
	return params;
}

static void check_e820_entry(const struct boot_e820_entry *entry, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(entry->addr, addr);
	assert_int_equal(entry->size, size);
	assert_int_equal(entry->type, type);
}

/* ---- boot_params ------------------------------------------------------ */

static void setup_vmlinux_boot_params(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	uint8_t kernel[ELF_FILE_SIZE];
	uint8_t initrd[10000];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel, .kernel_size = make_elf(kernel),
		.cmdline = CMDLINE, .initrd = initrd, .initrd_size = sizeof(initrd), .vcpus = 2,
	};
	const struct boot_params *params;
	uint64_t initrd_addr = (256 * MIB - sizeof(initrd)) & ~0xfffull;

	memset(initrd, 0x5a, sizeof(initrd));
	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	if (x86_boot__setup(&mem, &in, &regs, &err) != 0)
		fail_msg("%s", err.message);
	params = boot_params(&mem);

	assert_int_equal(params->hdr.boot_flag, 0xaa55);
	assert_memory_equal(&params->hdr.header, "HdrS", 4);
	assert_int_equal(params->hdr.version, 0x020f);
	assert_int_equal(params->hdr.type_of_loader, 0xff);
	assert_int_equal(params->hdr.loadflags & 0x01, 0x01);
	assert_int_equal(params->hdr.kernel_alignment, 16 * MIB);
	assert_int_equal(params->hdr.cmdline_size, 2047);
	assert_int_equal(params->hdr.cmd_line_ptr, 0x20000);
	assert_int_equal(params->ext_cmd_line_ptr, 0);
	assert_string_equal(guest_memory__hva(&mem, 0x20000, sizeof(CMDLINE)), CMDLINE);
	assert_int_equal(params->hdr.ramdisk_image, initrd_addr);
	assert_int_equal(params->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(params->ext_ramdisk_image, 0);
	assert_memory_equal(guest_memory__hva(&mem, initrd_addr, sizeof(initrd)), initrd, sizeof(initrd));
	assert_int_equal(params->sentinel, 0);

	assert_int_equal(params->e820_entries, 3);
	check_e820_entry(&params->e820_table[0], 0, 0x9fc00, BOOT_E820_RAM);
	check_e820_entry(&params->e820_table[1], 0x9fc00, 0x100000 - 0x9fc00, BOOT_E820_RESERVED);
	check_e820_entry(&params->e820_table[2], 0x100000, 256 * MIB - 0x100000, BOOT_E820_RAM);

	assert_memory_equal(guest_memory__hva(&mem, 0x9fc00, 4), "_MP_", 4);
	guest_memory__destroy(&mem);
}

static void setup_bzimage_boot_params(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	static uint8_t kernel[BZ_FILE_SIZE];
	size_t kernel_size = make_bzimage(kernel, 0x7fffffff);
	uint8_t initrd[5000];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel, .kernel_size = kernel_size,
		.cmdline = CMDLINE, .initrd = initrd, .initrd_size = sizeof(initrd), .vcpus = 1,
	};
	const struct boot_params *params;

	memset(initrd, 0xa5, sizeof(initrd));
	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	if (x86_boot__setup(&mem, &in, &regs, &err) != 0)
		fail_msg("%s", err.message);
	params = boot_params(&mem);

	/* Copied from the file. */
	assert_int_equal(params->hdr.setup_sects, 1);
	assert_int_equal(params->hdr.version, 0x020f);
	assert_int_equal(params->hdr.xloadflags, 0x0003);
	assert_int_equal(params->hdr.init_size, 0x800000);
	assert_int_equal(params->hdr.pref_address, 0x1000000);
	assert_int_equal(params->hdr.kernel_alignment, 0x200000);
	assert_int_equal(params->hdr.cmdline_size, 255);
	/* Written by the loader. */
	assert_int_equal(params->hdr.type_of_loader, 0xff);
	assert_int_equal(params->hdr.cmd_line_ptr, 0x20000);
	assert_int_equal(params->hdr.ramdisk_image, (256 * MIB - sizeof(initrd)) & ~0xfffull);
	assert_int_equal(params->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(params->e820_entries, 3);

	assert_int_equal(regs.rip, 0x100200);
	assert_memory_equal(guest_memory__hva(&mem, 0x100000, BZ_CODE_SIZE), kernel + BZ_CODE_OFFSET, BZ_CODE_SIZE);
	guest_memory__destroy(&mem);
}

/* ---- e820 ------------------------------------------------------------- */

static void e820_256_mib(void **state)
{
	struct guest_memory mem;
	struct boot_e820_entry entries[8];

	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	assert_int_equal(x86_boot__e820(&mem, entries, 8), 3);
	check_e820_entry(&entries[0], 0, 0x9fc00, BOOT_E820_RAM);
	check_e820_entry(&entries[1], 0x9fc00, 0x60400, BOOT_E820_RESERVED);
	check_e820_entry(&entries[2], 0x100000, 0xff00000, BOOT_E820_RAM);
	guest_memory__destroy(&mem);
}

static void e820_3_gib(void **state)
{
	struct guest_memory mem;
	struct boot_e820_entry entries[8];

	assert_int_equal(guest_memory__init(&mem, 3 * GIB), 0);
	assert_int_equal(x86_boot__e820(&mem, entries, 8), 3);
	check_e820_entry(&entries[0], 0, 0x9fc00, BOOT_E820_RAM);
	check_e820_entry(&entries[1], 0x9fc00, 0x60400, BOOT_E820_RESERVED);
	check_e820_entry(&entries[2], 0x100000, 0xc0000000 - 0x100000, BOOT_E820_RAM);
	guest_memory__destroy(&mem);
}

static void e820_5_gib(void **state)
{
	struct guest_memory mem;
	struct boot_e820_entry entries[8];

	assert_int_equal(guest_memory__init(&mem, 5 * GIB), 0);
	assert_int_equal(x86_boot__e820(&mem, entries, 8), 4);
	check_e820_entry(&entries[0], 0, 0x9fc00, BOOT_E820_RAM);
	check_e820_entry(&entries[1], 0x9fc00, 0x60400, BOOT_E820_RESERVED);
	check_e820_entry(&entries[2], 0x100000, 0xc0000000 - 0x100000, BOOT_E820_RAM);
	check_e820_entry(&entries[3], 0x100000000, 2 * GIB, BOOT_E820_RAM);
	guest_memory__destroy(&mem);
}

static void e820_respects_max(void **state)
{
	struct guest_memory mem;
	struct boot_e820_entry entries[3];

	memset(entries, 0xee, sizeof(entries));
	assert_int_equal(guest_memory__init(&mem, 5 * GIB), 0);
	assert_int_equal(x86_boot__e820(&mem, entries, 2), 2);
	assert_int_equal(entries[2].type, 0xeeeeeeee);
	guest_memory__destroy(&mem);
}

/* ---- initrd and command line ------------------------------------------ */

static int setup_vmlinux(struct guest_memory *mem, const char *cmdline, const uint8_t *initrd,
			 size_t initrd_size, struct smcore_x86_regs *regs, struct sm_error *err)
{
	static uint8_t kernel[ELF_FILE_SIZE];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel, .kernel_size = make_elf(kernel),
		.cmdline = cmdline, .initrd = initrd, .initrd_size = initrd_size, .vcpus = 1,
	};

	return x86_boot__setup(mem, &in, regs, err);
}

static void initrd_below_initrd_addr_max(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	static uint8_t kernel[BZ_FILE_SIZE];
	uint8_t initrd[3 * 4096 + 1];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel,
		.kernel_size = make_bzimage(kernel, 64 * MIB - 1),
		.cmdline = "", .initrd = initrd, .initrd_size = sizeof(initrd), .vcpus = 1,
	};

	memset(initrd, 1, sizeof(initrd));
	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	if (x86_boot__setup(&mem, &in, &regs, &err) != 0)
		fail_msg("%s", err.message);
	/* The end of the initrd is at most 64 MiB, and the start is 4 KiB aligned. */
	assert_int_equal(boot_params(&mem)->hdr.ramdisk_image, 64 * MIB - 4 * 4096);
	guest_memory__destroy(&mem);
}

static void initrd_vmlinux_default_limit(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	uint8_t initrd[4096];

	/* A 2 GiB guest: the default initrd_addr_max 0x37ffffff is below the RAM end. */
	assert_int_equal(guest_memory__init(&mem, 2 * GIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", initrd, sizeof(initrd), &regs, &err), 0);
	assert_int_equal(boot_params(&mem)->hdr.ramdisk_image, 0x38000000 - 4096);
	guest_memory__destroy(&mem);
}

static void initrd_too_large_rejected(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	size_t size = 240 * MIB;
	uint8_t *initrd = calloc(1, size);

	/* 256 MiB of RAM with the kernel ending above 16 MiB leaves less than 240 MiB. */
	assert_non_null(initrd);
	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", initrd, size, &regs, &err), -EFBIG);
	assert_non_null(strstr(err.message, "initrd of 251658240 bytes does not fit between the kernel end 0x1001000 and 0x10000000"));
	guest_memory__destroy(&mem);
	free(initrd);
}

static void initrd_larger_than_ram_rejected(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	size_t size = 300 * MIB;
	uint8_t *initrd = calloc(1, size);

	assert_non_null(initrd);
	assert_int_equal(guest_memory__init(&mem, 256 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", initrd, size, &regs, &err), -EFBIG);
	assert_non_null(strstr(err.message, "initrd of 314572800 bytes does not fit"));
	guest_memory__destroy(&mem);
	free(initrd);
}

static void cmdline_at_limit_accepted(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	char cmdline[2048];

	memset(cmdline, 'x', 2047);
	cmdline[2047] = '\0';
	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, cmdline, NULL, 0, &regs, &err), 0);
	assert_string_equal(guest_memory__hva(&mem, 0x20000, 2048), cmdline);
	guest_memory__destroy(&mem);
}

static void cmdline_too_long_rejected(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	char cmdline[2049];

	memset(cmdline, 'x', 2048);
	cmdline[2048] = '\0';
	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, cmdline, NULL, 0, &regs, &err), -E2BIG);
	assert_non_null(strstr(err.message, "kernel command line is 2048 bytes long, but the kernel accepts at most 2047"));
	guest_memory__destroy(&mem);
}

static void cmdline_bzimage_limit_from_header(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	static uint8_t kernel[BZ_FILE_SIZE];
	char cmdline[257];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel,
		.kernel_size = make_bzimage(kernel, 0x7fffffff), .cmdline = cmdline, .vcpus = 1,
	};

	memset(cmdline, 'y', 256);
	cmdline[256] = '\0';
	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(x86_boot__setup(&mem, &in, &regs, &err), -E2BIG);
	assert_non_null(strstr(err.message, "accepts at most 255"));
	guest_memory__destroy(&mem);
}

/* ---- Other rejections ------------------------------------------------- */

static void setup_rejects_tiny_guest(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, 1 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", NULL, 0, &regs, &err), -ENOMEM);
	assert_non_null(strstr(err.message, "guest RAM of 1048576 bytes is too small"));
	guest_memory__destroy(&mem);
}

static void setup_reports_kernel_error(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	uint8_t kernel[ELF_FILE_SIZE];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel, .kernel_size = make_elf(kernel),
		.cmdline = "", .vcpus = 1,
	};

	/* The kernel at 16 MiB does not fit in 8 MiB of RAM. */
	assert_int_equal(guest_memory__init(&mem, 8 * MIB), 0);
	assert_int_equal(x86_boot__setup(&mem, &in, &regs, &err), -EFBIG);
	assert_non_null(strstr(err.message, KERNEL_PATH ": ELF segment 0"));
	guest_memory__destroy(&mem);
}

static void setup_rejects_zero_vcpus(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	uint8_t kernel[ELF_FILE_SIZE];
	struct x86_boot_input in = {
		.kernel_path = KERNEL_PATH, .kernel = kernel, .kernel_size = make_elf(kernel),
		.cmdline = "", .vcpus = 0,
	};

	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(x86_boot__setup(&mem, &in, &regs, &err), -EINVAL);
	assert_non_null(strstr(err.message, "0 vCPUs is invalid"));
	guest_memory__destroy(&mem);
}

/* ---- Registers, GDT and page tables ----------------------------------- */

static void regs_enter_64_bit_mode(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, CMDLINE, NULL, 0, &regs, &err), 0);

	assert_int_equal(regs.rip, ELF_PADDR);
	assert_int_equal(regs.rsi, 0x7000);
	assert_int_equal(regs.rflags, 0x2);
	assert_int_equal(regs.cr3, 0x9000);
	assert_int_equal(regs.cr0 & 0x80000001, 0x80000001);   /* PG and PE */
	assert_int_equal(regs.cr4 & 0x20, 0x20);               /* PAE */
	assert_int_equal(regs.efer, 0x500);                    /* LME and LMA */

	assert_int_equal(regs.cs.selector, 0x10);
	assert_int_equal(regs.cs.l, 1);
	assert_int_equal(regs.cs.db, 0);
	assert_int_equal(regs.cs.present, 1);
	assert_int_equal(regs.cs.s, 1);
	assert_int_equal(regs.cs.type & 0x8, 0x8);             /* code */
	assert_int_equal(regs.ds.selector, 0x18);
	assert_int_equal(regs.ss.selector, 0x18);
	assert_int_equal(regs.es.selector, 0x18);
	assert_int_equal(regs.ds.type & 0xa, 0x2);             /* writable data */
	assert_int_equal(regs.ds.limit, 0xffffffff);
	assert_int_equal(regs.tr.type, 0xb);
	assert_int_equal(regs.tr.s, 0);

	assert_int_equal(regs.gdt.base, 0x500);
	assert_int_equal(regs.gdt.limit, 6 * 8 - 1);
	guest_memory__destroy(&mem);
}

static void gdt_matches_regs(void **state)
{
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };
	uint64_t gdt[6];

	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", NULL, 0, &regs, &err), 0);
	assert_int_equal(guest_memory__read(&mem, regs.gdt.base, gdt, sizeof(gdt)), 0);

	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0);
	assert_int_equal(gdt[2], 0x00af9b000000ffffull);   /* flat 64-bit code, accessed */
	assert_int_equal(gdt[3], 0x00cf93000000ffffull);   /* flat read/write data, accessed */
	assert_int_equal(gdt[4], 0x00008b0006000067ull);   /* busy TSS at 0x600, limit 0x67 */
	assert_int_equal(gdt[5], 0);
	guest_memory__destroy(&mem);
}

/* Translates `va` through 4-level page tables with 2 MiB or 4 KiB pages, or returns UINT64_MAX when it is not mapped. */
static uint64_t translate(const struct guest_memory *mem, uint64_t cr3, uint64_t va)
{
	uint64_t table = cr3 & ~0xfffull;
	uint64_t entry = 0;

	for (int level = 3; level >= 0; level--) {
		unsigned index = (va >> (12 + 9 * level)) & 0x1ff;

		assert_int_equal(guest_memory__read(mem, table + index * 8, &entry, 8), 0);
		if (!(entry & 1))
			return UINT64_MAX;
		if (level == 1 && (entry & 0x80))
			return (entry & 0x000fffffffe00000ull) | (va & 0x1fffff);
		table = entry & 0x000ffffffffff000ull;
	}
	return table | (va & 0xfff);
}

static void page_tables_identity_map_4_gib(void **state)
{
	static const uint64_t addresses[] = {
		0, 0x7000, 0x9fc00, 0x1000123, 0x3fffffff, 0x40000000, 0xbffff000,
		0xfec00000, 0xfee00000, 0xffffffff,
	};
	struct guest_memory mem;
	struct smcore_x86_regs regs;
	struct sm_error err = { 0 };

	assert_int_equal(guest_memory__init(&mem, 64 * MIB), 0);
	assert_int_equal(setup_vmlinux(&mem, "", NULL, 0, &regs, &err), 0);
	for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++)
		assert_int_equal(translate(&mem, regs.cr3, addresses[i]), addresses[i]);
	assert_int_equal(translate(&mem, regs.cr3, 0x100000000ull), UINT64_MAX);
	assert_int_equal(translate(&mem, regs.cr3, 0xffffffff81000000ull), UINT64_MAX);
	guest_memory__destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(setup_vmlinux_boot_params),
		cmocka_unit_test(setup_bzimage_boot_params),
		cmocka_unit_test(e820_256_mib),
		cmocka_unit_test(e820_3_gib),
		cmocka_unit_test(e820_5_gib),
		cmocka_unit_test(e820_respects_max),
		cmocka_unit_test(initrd_below_initrd_addr_max),
		cmocka_unit_test(initrd_vmlinux_default_limit),
		cmocka_unit_test(initrd_too_large_rejected),
		cmocka_unit_test(initrd_larger_than_ram_rejected),
		cmocka_unit_test(cmdline_at_limit_accepted),
		cmocka_unit_test(cmdline_too_long_rejected),
		cmocka_unit_test(cmdline_bzimage_limit_from_header),
		cmocka_unit_test(setup_rejects_tiny_guest),
		cmocka_unit_test(setup_reports_kernel_error),
		cmocka_unit_test(setup_rejects_zero_vcpus),
		cmocka_unit_test(regs_enter_64_bit_mode),
		cmocka_unit_test(gdt_matches_regs),
		cmocka_unit_test(page_tables_identity_map_4_gib),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
