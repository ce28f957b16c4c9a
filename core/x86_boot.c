/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory at the kernel's 64-bit entry:
 *
 *   0x00000 - 0x004ff  real-mode IVT and BIOS data area, left zero
 *   0x00500 - 0x0052f  GDT: null, null, code 0x10, data 0x18, TSS 0x20 (16 bytes)
 *   0x00540            IDT with limit 0, so any exception before Linux loads its own shuts the vCPU down
 *   0x00600 - 0x00667  TSS, zero
 *   0x07000 - 0x07fff  boot_params (the zero page), RSI at entry
 *   0x08000 - 0x08fff  boot stack, RSP starts at 0x8ff0
 *   0x09000 - 0x0efff  page tables: PML4, PDPT and four page directories that
 *                      identity-map [0, 4 GiB) with 2 MiB pages
 *   0x20000 - 0x2ffff  kernel command line
 *   0x9fc00 - 0x9ffff  MP table (the last KiB of base memory, where Linux scans)
 *   0xa0000 - 0xfffff  reserved in e820 (legacy video and ROM area)
 *   0x100000 -         bzImage protected-mode code; a vmlinux goes to its
 *                      p_paddr, 16 MiB for a default x86-64 build
 *   top of low RAM     initrd, page-aligned, below min(low RAM end, initrd_addr_max + 1)
 *
 * RAM is [0, low_end) and, for guests larger than 3 GiB, [4 GiB, ...): the
 * 32-bit MMIO hole between them is left out of the e820 map.
 */
#include "x86_boot.h"

#include <errno.h>
#include <string.h>

#include "kernel_loader.h"
#include "mptable.h"

#define E820_BASE_MEMORY_END X86_BOOT_MPTABLE_ADDR /* 639 KiB of base memory */

#define PAGE_SIZE 0x1000ull
#define PAGE_PRESENT  (1ull << 0)
#define PAGE_WRITABLE (1ull << 1)
#define PAGE_HUGE     (1ull << 7)                  /* a 2 MiB page in a page directory */
#define IDENTITY_MAP_PDS 4                         /* one page directory maps 1 GiB */

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_RESERVED (1ull << 1)                /* bit 1 always reads as 1 */

#define SEGMENT_TYPE_CODE_EXEC_READ 0xb            /* accessed */
#define SEGMENT_TYPE_DATA_READ_WRITE 0x3           /* accessed */
#define SEGMENT_TYPE_TSS_BUSY 0xb
#define SEGMENT_TYPE_LDT 0x2
#define TSS_SIZE 0x68

#define GDT_ENTRIES 6                              /* the 64-bit TSS descriptor takes two */

/* The maximum command line length of Linux/x86 (COMMAND_LINE_SIZE 2048 with its NUL). */
#define VMLINUX_CMDLINE_SIZE 2047
#define VMLINUX_BOOT_PROTOCOL 0x020f
#define VMLINUX_KERNEL_ALIGNMENT 0x1000000

/* ---- e820 ------------------------------------------------------------- */

static void add_e820(struct boot_e820_entry *entries, unsigned max, unsigned *count,
		     uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0 || *count >= max)
		return;
	entries[*count] = (struct boot_e820_entry){ .addr = addr, .size = size, .type = type };
	(*count)++;
}

unsigned x86_boot__e820(const struct guest_memory *mem, struct boot_e820_entry *entries, unsigned max)
{
	uint64_t low_end = mem->region_count ? mem->regions[0].size : 0;
	unsigned count = 0;

	add_e820(entries, max, &count, 0,
		 low_end < E820_BASE_MEMORY_END ? low_end : E820_BASE_MEMORY_END, BOOT_E820_RAM);
	add_e820(entries, max, &count, E820_BASE_MEMORY_END,
		 X86_BOOT_HIGH_MEMORY - E820_BASE_MEMORY_END, BOOT_E820_RESERVED);
	if (low_end > X86_BOOT_HIGH_MEMORY)
		add_e820(entries, max, &count, X86_BOOT_HIGH_MEMORY,
			 low_end - X86_BOOT_HIGH_MEMORY, BOOT_E820_RAM);
	for (unsigned i = 1; i < mem->region_count; i++)
		add_e820(entries, max, &count, mem->regions[i].gpa, mem->regions[i].size, BOOT_E820_RAM);
	return count;
}

/* ---- boot_params ------------------------------------------------------ */

static void fill_vmlinux_header(struct boot_setup_header *hdr)
{
	hdr->boot_flag = BOOT_FLAG_MAGIC;
	hdr->header = BOOT_HDR_MAGIC;
	hdr->version = VMLINUX_BOOT_PROTOCOL;
	hdr->loadflags = BOOT_LOADFLAG_LOADED_HIGH;
	hdr->kernel_alignment = VMLINUX_KERNEL_ALIGNMENT;
	hdr->cmdline_size = VMLINUX_CMDLINE_SIZE;
	hdr->initrd_addr_max = KERNEL_DEFAULT_INITRD_ADDR_MAX;
}

static int write_cmdline(struct guest_memory *mem, const char *cmdline, uint32_t cmdline_size,
			 struct boot_params *params, struct sm_error *err)
{
	size_t len = strlen(cmdline);
	uint64_t max = cmdline_size < X86_BOOT_CMDLINE_AREA - 1 ? cmdline_size : X86_BOOT_CMDLINE_AREA - 1;

	if (len > max)
		return sm_error__set(err, E2BIG,
				     "kernel command line is %zu bytes long, but the kernel accepts at most %llu",
				     len, (unsigned long long)max);
	if (guest_memory__write(mem, X86_BOOT_CMDLINE_ADDR, cmdline, len + 1))
		return sm_error__set(err, EFAULT, "kernel command line does not fit in guest RAM");
	params->hdr.cmd_line_ptr = (uint32_t)X86_BOOT_CMDLINE_ADDR;
	return 0;
}

static int write_initrd(struct guest_memory *mem, const struct x86_boot_input *in,
			const struct kernel_image *image, struct boot_params *params,
			struct sm_error *err)
{
	uint64_t low_end = mem->regions[0].size;
	uint64_t limit = (uint64_t)image->initrd_addr_max + 1;
	uint64_t addr;

	if (in->initrd_size == 0)
		return 0;

	if (limit > low_end)
		limit = low_end;
	if (in->initrd_size > limit || ((limit - in->initrd_size) & ~(PAGE_SIZE - 1)) < image->load_end)
		return sm_error__set(err, EFBIG,
				     "initrd of %zu bytes does not fit between the kernel end 0x%llx and 0x%llx (the lower of guest RAM end and the kernel's initrd_addr_max + 1)",
				     in->initrd_size, (unsigned long long)image->load_end,
				     (unsigned long long)limit);
	addr = (limit - in->initrd_size) & ~(PAGE_SIZE - 1);

	if (guest_memory__write(mem, addr, in->initrd, in->initrd_size))
		return sm_error__set(err, EFAULT, "initrd at 0x%llx does not fit in guest RAM",
				     (unsigned long long)addr);
	params->hdr.ramdisk_image = (uint32_t)addr;
	params->hdr.ramdisk_size = (uint32_t)in->initrd_size;
	return 0;
}

static int write_boot_params(struct guest_memory *mem, const struct x86_boot_input *in,
			     const struct kernel_image *image, struct sm_error *err)
{
	struct boot_params params;
	int ret;

	memset(&params, 0, sizeof(params));
	if (image->is_bzimage)
		memcpy(&params.hdr, image->setup_header, image->setup_header_size);
	else
		fill_vmlinux_header(&params.hdr);
	params.hdr.type_of_loader = BOOT_LOADER_UNKNOWN;

	ret = write_cmdline(mem, in->cmdline ? in->cmdline : "", params.hdr.cmdline_size, &params, err);
	if (ret)
		return ret;
	ret = write_initrd(mem, in, image, &params, err);
	if (ret)
		return ret;
	params.e820_entries = (uint8_t)x86_boot__e820(mem, params.e820_table, BOOT_E820_MAX_ENTRIES);

	if (guest_memory__write(mem, X86_BOOT_PARAMS_ADDR, &params, sizeof(params)))
		return sm_error__set(err, EFAULT, "boot_params do not fit in guest RAM");
	return 0;
}

/* ---- Page tables, GDT and registers ----------------------------------- */

static void write_page_tables(struct guest_memory *mem)
{
	uint64_t *pml4 = guest_memory__hva(mem, X86_BOOT_PML4_ADDR, PAGE_SIZE);
	uint64_t *pdpt = guest_memory__hva(mem, X86_BOOT_PDPT_ADDR, PAGE_SIZE);
	uint64_t *pd = guest_memory__hva(mem, X86_BOOT_PD_ADDR, IDENTITY_MAP_PDS * PAGE_SIZE);

	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = X86_BOOT_PDPT_ADDR | PAGE_PRESENT | PAGE_WRITABLE;
	for (uint64_t i = 0; i < IDENTITY_MAP_PDS; i++)
		pdpt[i] = (X86_BOOT_PD_ADDR + i * PAGE_SIZE) | PAGE_PRESENT | PAGE_WRITABLE;
	for (uint64_t i = 0; i < IDENTITY_MAP_PDS * 512; i++)
		pd[i] = (i << 21) | PAGE_PRESENT | PAGE_WRITABLE | PAGE_HUGE;
}

/* Encodes `segment` as an 8-byte GDT descriptor (the low half of a 64-bit system descriptor). */
static uint64_t encode_descriptor(const struct smcore_x86_segment *segment)
{
	uint64_t limit = segment->g ? segment->limit >> 12 : segment->limit;
	uint64_t base = segment->base;

	return (limit & 0xffff) | (base & 0xffffff) << 16 |
	       (uint64_t)(segment->type & 0xf) << 40 | (uint64_t)(segment->s & 1) << 44 |
	       (uint64_t)(segment->dpl & 3) << 45 | (uint64_t)(segment->present & 1) << 47 |
	       ((limit >> 16) & 0xf) << 48 | (uint64_t)(segment->avl & 1) << 52 |
	       (uint64_t)(segment->l & 1) << 53 | (uint64_t)(segment->db & 1) << 54 |
	       (uint64_t)(segment->g & 1) << 55 | ((base >> 24) & 0xff) << 56;
}

static void fill_segments(struct smcore_x86_regs *regs)
{
	struct smcore_x86_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = X86_BOOT_DS_SELECTOR,
		.type = SEGMENT_TYPE_DATA_READ_WRITE, .present = 1, .db = 1, .s = 1, .g = 1,
	};

	regs->cs = (struct smcore_x86_segment){
		.base = 0, .limit = 0xffffffff, .selector = X86_BOOT_CS_SELECTOR,
		.type = SEGMENT_TYPE_CODE_EXEC_READ, .present = 1, .s = 1, .l = 1, .g = 1,
	};
	regs->ds = regs->es = regs->fs = regs->gs = regs->ss = data;
	regs->tr = (struct smcore_x86_segment){
		.base = X86_BOOT_TSS_ADDR, .limit = TSS_SIZE - 1, .selector = X86_BOOT_TR_SELECTOR,
		.type = SEGMENT_TYPE_TSS_BUSY, .present = 1,
	};
	regs->ldt = (struct smcore_x86_segment){ .type = SEGMENT_TYPE_LDT };
}

static void write_gdt(struct guest_memory *mem, const struct smcore_x86_regs *regs)
{
	uint64_t gdt[GDT_ENTRIES] = { 0 };

	gdt[X86_BOOT_CS_SELECTOR / 8] = encode_descriptor(&regs->cs);
	gdt[X86_BOOT_DS_SELECTOR / 8] = encode_descriptor(&regs->ds);
	gdt[X86_BOOT_TR_SELECTOR / 8] = encode_descriptor(&regs->tr);
	gdt[X86_BOOT_TR_SELECTOR / 8 + 1] = regs->tr.base >> 32;
	guest_memory__write(mem, X86_BOOT_GDT_ADDR, gdt, sizeof(gdt));
	memset(guest_memory__hva(mem, X86_BOOT_TSS_ADDR, TSS_SIZE), 0, TSS_SIZE);
}

static void fill_regs(struct smcore_x86_regs *regs, uint64_t entry)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = entry;
	regs->rsi = X86_BOOT_PARAMS_ADDR;
	regs->rsp = X86_BOOT_STACK_TOP;
	regs->rbp = X86_BOOT_STACK_TOP;
	regs->rflags = RFLAGS_RESERVED;
	fill_segments(regs);
	regs->gdt = (struct smcore_x86_dtable){ .base = X86_BOOT_GDT_ADDR, .limit = GDT_ENTRIES * 8 - 1 };
	regs->idt = (struct smcore_x86_dtable){ .base = X86_BOOT_IDT_ADDR, .limit = 0 };
	regs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	regs->cr3 = X86_BOOT_PML4_ADDR;
	regs->cr4 = CR4_PAE;
	regs->efer = EFER_LME | EFER_LMA;
}

int x86_boot__setup(struct guest_memory *mem, const struct x86_boot_input *in,
		    struct smcore_x86_regs *regs, struct sm_error *err)
{
	struct kernel_image image;
	int ret;

	if (mem->region_count == 0 || mem->regions[0].size <= X86_BOOT_HIGH_MEMORY)
		return sm_error__set(err, ENOMEM,
				     "guest RAM of %llu bytes is too small: the boot structures take the first 1 MiB and the kernel goes above it",
				     (unsigned long long)mem->size);

	ret = kernel_loader__load_file(mem, in->kernel_path, in->kernel_fd ? *in->kernel_fd : -1,
				       in->kernel, in->kernel_size, &image, err);
	if (ret)
		return ret;
	ret = write_boot_params(mem, in, &image, err);
	if (ret)
		return ret;
	ret = mptable__write(mem, X86_BOOT_MPTABLE_ADDR, in->vcpus, err);
	if (ret)
		return ret;

	write_page_tables(mem);
	fill_regs(regs, image.entry);
	write_gdt(mem, regs);
	return 0;
}
