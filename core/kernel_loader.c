/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every value read from the kernel file is untrusted: offsets and sizes are
 * checked against the file size and guest RAM before use, and sums are
 * computed with overflow checks.
 */
#include "kernel_loader.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "x86_boot.h"

#define BZIMAGE_MIN_VERSION 0x020c      /* 2.12: the first protocol with xloadflags */
#define BZIMAGE_SECTOR 512
#define BZIMAGE_DEFAULT_SETUP_SECTS 4   /* setup_sects 0 means 4 */

/* Returns the end of low guest RAM: the first region always starts at GPA 0. */
static uint64_t low_ram_end(const struct guest_memory *mem)
{
	return mem->region_count ? mem->regions[0].size : 0;
}

/* ---- ELF vmlinux ------------------------------------------------------ */

static int check_elf_header(const char *path, const Elf64_Ehdr *ehdr, size_t size,
			    struct sm_error *err)
{
	uint64_t table_size;
	uint64_t table_end;

	if (ehdr->e_ident[EI_CLASS] != ELFCLASS64)
		return sm_error__set(err, ENOEXEC, "%s: ELF class %u is not ELF64: the kernel must be an x86-64 vmlinux",
				     path, ehdr->e_ident[EI_CLASS]);
	if (ehdr->e_ident[EI_DATA] != ELFDATA2LSB)
		return sm_error__set(err, ENOEXEC, "%s: ELF data encoding %u is not little-endian",
				     path, ehdr->e_ident[EI_DATA]);
	if (ehdr->e_machine != EM_X86_64)
		return sm_error__set(err, ENOEXEC, "%s: ELF machine %u is not x86-64 (%u)",
				     path, ehdr->e_machine, EM_X86_64);
	if (ehdr->e_type != ET_EXEC)
		return sm_error__set(err, ENOEXEC, "%s: ELF type %u is not an executable (ET_EXEC)",
				     path, ehdr->e_type);
	if (ehdr->e_phentsize != sizeof(Elf64_Phdr))
		return sm_error__set(err, ENOEXEC, "%s: ELF program header size %u is invalid: expected %zu",
				     path, ehdr->e_phentsize, sizeof(Elf64_Phdr));
	if (ehdr->e_phnum == 0 || ehdr->e_phnum == PN_XNUM)
		return sm_error__set(err, ENOEXEC, "%s: ELF program header count %u is invalid",
				     path, ehdr->e_phnum);

	table_size = (uint64_t)ehdr->e_phnum * sizeof(Elf64_Phdr);
	if (__builtin_add_overflow(ehdr->e_phoff, table_size, &table_end) || table_end > size)
		return sm_error__set(err, ENOEXEC,
				     "%s: ELF program header table at offset 0x%llx (%llu bytes) lies past the end of the file (%zu bytes)",
				     path, (unsigned long long)ehdr->e_phoff,
				     (unsigned long long)table_size, size);
	return 0;
}

/*
 * Map the whole pages of a page-aligned segment straight from the kernel file
 * over guest RAM, copy-on-write: the guest faults in only the pages it
 * touches, and nothing is copied up front. Returns the bytes mapped, 0 when
 * the segment is not aligned or mapping failed (the caller then copies).
 */
static uint64_t map_segment(int fd, uint8_t *dst, const Elf64_Phdr *phdr)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t whole = phdr->p_filesz & ~(page - 1);

	if (fd < 0 || whole == 0 || phdr->p_offset % page || (uintptr_t)dst % page)
		return 0;
	if (mmap(dst, whole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
		 (off_t)phdr->p_offset) != MAP_FAILED)
		return whole;
	/* A failed MAP_FIXED may leave a hole, so put zeroed anonymous memory back. */
	if (mmap(dst, whole, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		 -1, 0) == MAP_FAILED)
		abort(); /* guest RAM has a hole that KVM would fault on; nothing sane is left to do */
	return 0;
}

static int load_elf_segment(struct guest_memory *mem, const char *path, int fd, const uint8_t *data,
			    size_t size, const Elf64_Phdr *phdr, unsigned index, struct sm_error *err)
{
	uint64_t mapped;
	uint64_t file_end, ram_end = low_ram_end(mem);
	uint8_t *dst;

	if (phdr->p_filesz > phdr->p_memsz)
		return sm_error__set(err, ENOEXEC, "%s: ELF segment %u: p_filesz 0x%llx is larger than p_memsz 0x%llx",
				     path, index, (unsigned long long)phdr->p_filesz,
				     (unsigned long long)phdr->p_memsz);
	if (__builtin_add_overflow(phdr->p_offset, phdr->p_filesz, &file_end) || file_end > size)
		return sm_error__set(err, ENOEXEC,
				     "%s: ELF segment %u: file range at offset 0x%llx (0x%llx bytes) lies past the end of the file (%zu bytes)",
				     path, index, (unsigned long long)phdr->p_offset,
				     (unsigned long long)phdr->p_filesz, size);
	if (phdr->p_paddr < X86_BOOT_HIGH_MEMORY)
		return sm_error__set(err, EINVAL,
				     "%s: ELF segment %u at guest physical address 0x%llx overlaps the boot structures below 1 MiB",
				     path, index, (unsigned long long)phdr->p_paddr);

	/* Only low RAM is identity-mapped at the 64-bit entry, so the kernel must live there. */
	dst = guest_memory__hva(mem, phdr->p_paddr, phdr->p_memsz);
	if (!dst || phdr->p_paddr >= ram_end)
		return sm_error__set(err, EFBIG,
				     "%s: ELF segment %u at guest physical address 0x%llx (0x%llx bytes) lies outside guest RAM [0, 0x%llx)",
				     path, index, (unsigned long long)phdr->p_paddr,
				     (unsigned long long)phdr->p_memsz, (unsigned long long)ram_end);

	mapped = map_segment(fd, dst, phdr);
	memcpy(dst + mapped, data + phdr->p_offset + mapped, phdr->p_filesz - mapped);
	memset(dst + phdr->p_filesz, 0, phdr->p_memsz - phdr->p_filesz);
	return 0;
}

static int load_elf(struct guest_memory *mem, const char *path, int fd, const uint8_t *data,
		    size_t size, struct kernel_image *image, struct sm_error *err)
{
	Elf64_Ehdr ehdr;
	unsigned loaded = 0;
	int ret;

	if (size < sizeof(ehdr))
		return sm_error__set(err, ENOEXEC, "%s: ELF header is truncated: the file has %zu of %zu bytes",
				     path, size, sizeof(ehdr));
	memcpy(&ehdr, data, sizeof(ehdr));
	ret = check_elf_header(path, &ehdr, size, err);
	if (ret)
		return ret;

	image->load_start = UINT64_MAX;
	for (unsigned i = 0; i < ehdr.e_phnum; i++) {
		Elf64_Phdr phdr;

		memcpy(&phdr, data + ehdr.e_phoff + i * sizeof(phdr), sizeof(phdr));
		if (phdr.p_type != PT_LOAD || phdr.p_memsz == 0)
			continue;
		ret = load_elf_segment(mem, path, fd, data, size, &phdr, i, err);
		if (ret)
			return ret;
		if (phdr.p_paddr < image->load_start)
			image->load_start = phdr.p_paddr;
		if (phdr.p_paddr + phdr.p_memsz > image->load_end)
			image->load_end = phdr.p_paddr + phdr.p_memsz;
		loaded++;
	}
	if (loaded == 0)
		return sm_error__set(err, ENOEXEC, "%s: ELF file has no PT_LOAD segment", path);
	if (ehdr.e_entry < image->load_start || ehdr.e_entry >= image->load_end)
		return sm_error__set(err, ENOEXEC,
				     "%s: ELF entry point 0x%llx lies outside the loaded range [0x%llx, 0x%llx)",
				     path, (unsigned long long)ehdr.e_entry,
				     (unsigned long long)image->load_start,
				     (unsigned long long)image->load_end);

	image->entry = ehdr.e_entry;
	image->initrd_addr_max = KERNEL_DEFAULT_INITRD_ADDR_MAX;
	return 0;
}

/* ---- bzImage ---------------------------------------------------------- */

static int check_setup_header(const char *path, const struct boot_setup_header *hdr,
			      struct sm_error *err)
{
	if (hdr->boot_flag != BOOT_FLAG_MAGIC)
		return sm_error__set(err, ENOEXEC,
				     "%s: not an ELF vmlinux or a bzImage: boot_flag is 0x%04x, expected 0x%04x",
				     path, hdr->boot_flag, BOOT_FLAG_MAGIC);
	if (hdr->header != BOOT_HDR_MAGIC)
		return sm_error__set(err, ENOEXEC,
				     "%s: bad bzImage setup header magic 0x%08x, expected \"HdrS\"",
				     path, hdr->header);
	if (hdr->version < BZIMAGE_MIN_VERSION)
		return sm_error__set(err, ENOEXEC,
				     "%s: boot protocol %u.%02u is too old: the 64-bit entry needs 2.12 or newer",
				     path, hdr->version >> 8, hdr->version & 0xff);
	if (!(hdr->xloadflags & BOOT_XLF_KERNEL_64))
		return sm_error__set(err, ENOEXEC,
				     "%s: bzImage has no 64-bit entry point (XLF_KERNEL_64 is not set in xloadflags 0x%04x)",
				     path, hdr->xloadflags);
	if (!(hdr->loadflags & BOOT_LOADFLAG_LOADED_HIGH))
		return sm_error__set(err, ENOEXEC, "%s: a zImage (LOADED_HIGH not set) is not supported", path);
	return 0;
}

/*
 * Computes where the kernel ends once decompressed. The 64-bit entry of
 * Linux 6.1 extracts a relocatable kernel to the load address rounded up to
 * kernel_alignment, or to pref_address if that is higher, and any other kernel
 * to pref_address, and it uses init_size bytes from there.
 */
static int bzimage_end(const char *path, const struct boot_setup_header *hdr, uint64_t code_end,
		       uint64_t *end, struct sm_error *err)
{
	uint64_t dest = hdr->pref_address;
	uint64_t init_end;

	if (hdr->relocatable_kernel) {
		/* The same arithmetic as the kernel's, so an odd kernel_alignment gives its result. */
		uint32_t mask = hdr->kernel_alignment - 1;
		uint64_t aligned = (KERNEL_BZIMAGE_LOAD_ADDR + mask) & ~(uint64_t)mask;

		if (aligned > dest)
			dest = aligned;
	}
	if (dest < KERNEL_BZIMAGE_LOAD_ADDR)
		return sm_error__set(err, ENOEXEC,
				     "%s: bzImage would decompress to 0x%llx, below the 1 MiB load address",
				     path, (unsigned long long)dest);
	if (__builtin_add_overflow(dest, (uint64_t)hdr->init_size, &init_end))
		return sm_error__set(err, ENOEXEC, "%s: pref_address 0x%llx and init_size 0x%x overflow",
				     path, (unsigned long long)hdr->pref_address, hdr->init_size);
	*end = init_end > code_end ? init_end : code_end;
	return 0;
}

static int load_bzimage(struct guest_memory *mem, const char *path, const uint8_t *data,
			size_t size, struct kernel_image *image, struct sm_error *err)
{
	struct boot_setup_header hdr;
	size_t setup_size, code_size, header_end;
	uint64_t code_end, end = 0;
	uint8_t *dst;
	int ret;

	if (size < KERNEL_SETUP_HEADER_OFFSET + sizeof(hdr))
		return sm_error__set(err, ENOEXEC,
				     "%s: not an ELF vmlinux, and too short for a bzImage setup header (%zu bytes)",
				     path, size);
	memcpy(&hdr, data + KERNEL_SETUP_HEADER_OFFSET, sizeof(hdr));
	ret = check_setup_header(path, &hdr, err);
	if (ret)
		return ret;

	setup_size = ((size_t)(hdr.setup_sects ? hdr.setup_sects : BZIMAGE_DEFAULT_SETUP_SECTS) + 1) *
		     BZIMAGE_SECTOR;
	if (setup_size >= size)
		return sm_error__set(err, ENOEXEC,
				     "%s: setup_sects %u puts the protected-mode code at offset %zu, past the end of the file (%zu bytes)",
				     path, hdr.setup_sects, setup_size, size);
	code_size = size - setup_size;
	if ((uint64_t)hdr.syssize * 16 > code_size)
		return sm_error__set(err, ENOEXEC,
				     "%s: protected-mode code is truncated: syssize says %llu bytes, the file has %zu",
				     path, (unsigned long long)hdr.syssize * 16, code_size);

	code_end = KERNEL_BZIMAGE_LOAD_ADDR + code_size;
	ret = bzimage_end(path, &hdr, code_end, &end, err);
	if (ret)
		return ret;
	dst = guest_memory__hva(mem, KERNEL_BZIMAGE_LOAD_ADDR, end - KERNEL_BZIMAGE_LOAD_ADDR);
	if (!dst || end > low_ram_end(mem))
		return sm_error__set(err, EFBIG,
				     "%s: bzImage needs guest RAM [0x%llx, 0x%llx) for its code and decompression, but low guest RAM ends at 0x%llx",
				     path, KERNEL_BZIMAGE_LOAD_ADDR, (unsigned long long)end,
				     (unsigned long long)low_ram_end(mem));
	memcpy(dst, data + setup_size, code_size);

	/* The setup header ends at 0x202 plus the jump instruction's offset byte at 0x201. */
	header_end = 0x202 + data[0x201];
	if (header_end > KERNEL_SETUP_HEADER_OFFSET + KERNEL_SETUP_HEADER_MAX)
		header_end = KERNEL_SETUP_HEADER_OFFSET + KERNEL_SETUP_HEADER_MAX;
	image->setup_header_size = header_end - KERNEL_SETUP_HEADER_OFFSET;
	memcpy(image->setup_header, data + KERNEL_SETUP_HEADER_OFFSET, image->setup_header_size);

	image->is_bzimage = 1;
	image->entry = KERNEL_BZIMAGE_LOAD_ADDR + KERNEL_BZIMAGE_ENTRY_64;
	image->load_start = KERNEL_BZIMAGE_LOAD_ADDR;
	image->load_end = end;
	image->initrd_addr_max = hdr.initrd_addr_max;
	return 0;
}

int kernel_loader__load_file(struct guest_memory *mem, const char *path, int fd,
			     const uint8_t *data, size_t size, struct kernel_image *image,
			     struct sm_error *err)
{
	memset(image, 0, sizeof(*image));
	if (size == 0)
		return sm_error__set(err, ENOEXEC, "%s: kernel file is empty", path);

	if (size >= SELFMAG && memcmp(data, ELFMAG, SELFMAG) == 0)
		return load_elf(mem, path, fd, data, size, image, err);
	return load_bzimage(mem, path, data, size, image, err);
}

int kernel_loader__load(struct guest_memory *mem, const char *path, const uint8_t *data,
			size_t size, struct kernel_image *image, struct sm_error *err)
{
	return kernel_loader__load_file(mem, path, -1, data, size, image, err);
}
