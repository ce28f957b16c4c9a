/* SPDX-License-Identifier: Apache-2.0 */
/* Synthetic kernel files for the loader and boot tests, built in memory. */
#ifndef SMCORE_TEST_KERNEL_FIXTURES_H
#define SMCORE_TEST_KERNEL_FIXTURES_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "x86_boot.h"

#define ELF_PADDR 0x1000000ull
#define ELF_PAYLOAD_OFFSET 0x100
#define ELF_PAYLOAD_SIZE 64
#define ELF_MEMSZ 0x1000
#define ELF_FILE_SIZE (ELF_PAYLOAD_OFFSET + ELF_PAYLOAD_SIZE)

#define BZ_SETUP_SECTS 1
#define BZ_CODE_OFFSET ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_CODE_SIZE 4096
#define BZ_FILE_SIZE (BZ_CODE_OFFSET + BZ_CODE_SIZE)
#define BZ_INIT_SIZE 0x800000u
#define BZ_PREF_ADDRESS 0x1000000ull

/* An ELF64 x86-64 executable with one PT_LOAD segment of 64 bytes (memsz 4 KiB) at 16 MiB. */
static size_t make_elf(uint8_t *buf)
{
	Elf64_Ehdr ehdr = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = ELF_PADDR,
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = 1,
	};
	Elf64_Phdr phdr = {
		.p_type = PT_LOAD,
		.p_flags = PF_R | PF_X,
		.p_offset = ELF_PAYLOAD_OFFSET,
		.p_vaddr = 0xffffffff81000000ull,
		.p_paddr = ELF_PADDR,
		.p_filesz = ELF_PAYLOAD_SIZE,
		.p_memsz = ELF_MEMSZ,
		.p_align = 0x200000,
	};

	memset(buf, 0, ELF_FILE_SIZE);
	memcpy(buf, &ehdr, sizeof(ehdr));
	memcpy(buf + sizeof(ehdr), &phdr, sizeof(phdr));
	for (size_t i = 0; i < ELF_PAYLOAD_SIZE; i++)
		buf[ELF_PAYLOAD_OFFSET + i] = (uint8_t)(0x40 + i);
	return ELF_FILE_SIZE;
}

/*
 * A bzImage with protocol 2.15, XLF_KERNEL_64, one setup sector and 4 KiB of
 * protected-mode code that decompresses to 16 MiB (init_size 8 MiB).
 */
static size_t make_bzimage(uint8_t *buf, uint32_t initrd_addr_max)
{
	struct boot_setup_header hdr = {
		.setup_sects = BZ_SETUP_SECTS,
		.syssize = BZ_CODE_SIZE / 16,
		.boot_flag = 0xaa55,
		.jump = 0x6aeb,                 /* jmp short to 0x26c, the header end */
		.header = 0x53726448,
		.version = 0x020f,
		.loadflags = 0x01,
		.initrd_addr_max = initrd_addr_max,
		.kernel_alignment = 0x200000,
		.relocatable_kernel = 1,
		.xloadflags = 0x0003,
		.cmdline_size = 255,
		.pref_address = BZ_PREF_ADDRESS,
		.init_size = BZ_INIT_SIZE,
	};

	memset(buf, 0, BZ_FILE_SIZE);
	memcpy(buf + 0x1f1, &hdr, sizeof(hdr));
	for (size_t i = 0; i < BZ_CODE_SIZE; i++)
		buf[BZ_CODE_OFFSET + i] = (uint8_t)(i * 7 + 1);
	return BZ_FILE_SIZE;
}

#endif
