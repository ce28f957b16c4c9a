/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_memory.h"
#include "kernel_loader.h"
#include "x86_boot.h"

#define GUEST_RAM (256ull << 20)
#define KERNEL_PATH "/boot/test-kernel"

/* ---- Fixtures --------------------------------------------------------- */

#include "kernel_fixtures.h"

static Elf64_Ehdr *elf_header(uint8_t *buf)
{
	return (Elf64_Ehdr *)buf;
}

static Elf64_Phdr *elf_segment(uint8_t *buf)
{
	return (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr));
}

static struct boot_setup_header *setup_header(uint8_t *buf)
{
	return (struct boot_setup_header *)(buf + 0x1f1);
}

/* ---- Good files ------------------------------------------------------- */

static void loader_loads_elf_vmlinux(void **state)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	uint8_t file[ELF_FILE_SIZE];
	size_t size = make_elf(file);
	uint8_t *dst;

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	dst = guest_memory__hva(&mem, ELF_PADDR, ELF_MEMSZ);
	memset(dst, 0xaa, ELF_MEMSZ);

	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), 0);
	assert_int_equal(image.entry, ELF_PADDR);
	assert_int_equal(image.load_start, ELF_PADDR);
	assert_int_equal(image.load_end, ELF_PADDR + ELF_MEMSZ);
	assert_int_equal(image.is_bzimage, 0);
	assert_int_equal(image.setup_header_size, 0);
	assert_int_equal(image.initrd_addr_max, 0x37ffffff);
	assert_memory_equal(dst, file + ELF_PAYLOAD_OFFSET, ELF_PAYLOAD_SIZE);
	for (size_t i = ELF_PAYLOAD_SIZE; i < ELF_MEMSZ; i++)
		assert_int_equal(dst[i], 0);
	guest_memory__destroy(&mem);
}

/* Returns whether the page at `addr` is a mapping of the file `path`, per /proc/self/maps. */
static int is_mapped_from(const void *addr, const char *path)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	assert_non_null(maps);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && (uintptr_t)addr >= start &&
		    (uintptr_t)addr < end && strstr(line, path))
			found = 1;
	}
	fclose(maps);
	return found;
}

/* A page-aligned segment of 1.5 pages comes from the file: one page mapped, the rest copied. */
static void loader_maps_aligned_segment(void **state)
{
	enum { OFFSET = 0x1000, FILESZ = 0x1800, MEMSZ = 0x3000, FILE_SIZE = OFFSET + FILESZ };
	char path[] = "/tmp/smcore-test-vmlinux-XXXXXX";
	static uint8_t file[FILE_SIZE];
	struct kernel_image image;
	struct guest_memory mem;
	struct sm_error err = { 0 };
	uint8_t *dst, reread[FILE_SIZE];
	int fd;

	make_elf(file);
	elf_segment(file)->p_offset = OFFSET;
	elf_segment(file)->p_filesz = FILESZ;
	elf_segment(file)->p_memsz = MEMSZ;
	for (size_t i = 0; i < FILESZ; i++)
		file[OFFSET + i] = (uint8_t)(i * 13 + 5);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, file, FILE_SIZE), FILE_SIZE);

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	dst = guest_memory__hva(&mem, ELF_PADDR, MEMSZ);
	memset(dst, 0xee, MEMSZ); /* .bss must come out zeroed even over old contents */
	assert_int_equal(kernel_loader__load_file(&mem, path, fd, file, FILE_SIZE, &image, &err), 0);
	assert_memory_equal(dst, file + OFFSET, FILESZ);
	for (size_t i = FILESZ; i < MEMSZ; i++)
		assert_int_equal(dst[i], 0);
	assert_true(is_mapped_from(dst, path));

	/* Guest writes stay private: the kernel file itself never changes. */
	dst[0] ^= 0xff;
	assert_int_equal(pread(fd, reread, FILE_SIZE, 0), FILE_SIZE);
	assert_memory_equal(reread, file, FILE_SIZE);

	guest_memory__destroy(&mem);
	close(fd);
	unlink(path);
}

static void loader_loads_bzimage(void **state)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	static uint8_t file[BZ_FILE_SIZE];
	size_t size = make_bzimage(file, 0x7fffffff);

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), 0);
	assert_int_equal(image.is_bzimage, 1);
	assert_int_equal(image.entry, 0x100200);
	assert_int_equal(image.load_start, 0x100000);
	assert_int_equal(image.load_end, BZ_PREF_ADDRESS + BZ_INIT_SIZE);
	assert_int_equal(image.initrd_addr_max, 0x7fffffff);
	assert_int_equal(image.setup_header_size, 0x26c - 0x1f1);
	assert_memory_equal(image.setup_header, file + 0x1f1, image.setup_header_size);
	assert_memory_equal(guest_memory__hva(&mem, 0x100000, BZ_CODE_SIZE), file + BZ_CODE_OFFSET,
			    BZ_CODE_SIZE);
	guest_memory__destroy(&mem);
}

static void loader_caps_setup_header_size(void **state)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	static uint8_t file[BZ_FILE_SIZE];
	size_t size = make_bzimage(file, 0x7fffffff);

	file[0x201] = 0x7f; /* claims a header end of 0x281, past the 0x7f bytes boot_params has room for */
	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), 0);
	assert_int_equal(image.setup_header_size, 0x7f);
	guest_memory__destroy(&mem);
}

static void loader_bzimage_aligned_above_pref(void **state)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	static uint8_t file[BZ_FILE_SIZE];
	size_t size = make_bzimage(file, 0x7fffffff);

	/* 1 MiB rounded up to a 64 MiB alignment is above pref_address (16 MiB). */
	setup_header(file)->kernel_alignment = 64 << 20;
	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), 0);
	assert_int_equal(image.load_end, (64 << 20) + BZ_INIT_SIZE);

	setup_header(file)->relocatable_kernel = 0;
	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), 0);
	assert_int_equal(image.load_end, BZ_PREF_ADDRESS + BZ_INIT_SIZE);
	guest_memory__destroy(&mem);
}

/* ---- Malformed files -------------------------------------------------- */

enum fixture { FIXTURE_ELF, FIXTURE_BZIMAGE };

struct malformed_case {
	const char *name;
	enum fixture fixture;
	void (*mutate)(uint8_t *buf, size_t *size);
	int expected;
	const char *message;
};

static void empty_file(uint8_t *buf, size_t *size) { *size = 0; }
static void truncate_elf_header(uint8_t *buf, size_t *size) { *size = 40; }
static void set_elf_class_32(uint8_t *buf, size_t *size) { buf[EI_CLASS] = ELFCLASS32; }
static void set_big_endian(uint8_t *buf, size_t *size) { buf[EI_DATA] = ELFDATA2MSB; }
static void set_machine_i386(uint8_t *buf, size_t *size) { elf_header(buf)->e_machine = EM_386; }
static void set_type_dyn(uint8_t *buf, size_t *size) { elf_header(buf)->e_type = ET_DYN; }
static void set_phentsize(uint8_t *buf, size_t *size) { elf_header(buf)->e_phentsize = 32; }
static void set_no_phdrs(uint8_t *buf, size_t *size) { elf_header(buf)->e_phnum = 0; }
static void phdrs_past_end(uint8_t *buf, size_t *size) { elf_header(buf)->e_phoff = *size - 10; }
static void phoff_overflows(uint8_t *buf, size_t *size) { elf_header(buf)->e_phoff = UINT64_MAX - 8; }
static void filesz_past_end(uint8_t *buf, size_t *size) { elf_segment(buf)->p_filesz = ELF_MEMSZ; }
static void offset_overflows(uint8_t *buf, size_t *size) { elf_segment(buf)->p_offset = UINT64_MAX - 8; }
static void filesz_over_memsz(uint8_t *buf, size_t *size) { elf_segment(buf)->p_memsz = 16; }
static void segment_past_ram(uint8_t *buf, size_t *size) { elf_segment(buf)->p_paddr = GUEST_RAM - 0x800; }
static void segment_wraps(uint8_t *buf, size_t *size) { elf_segment(buf)->p_paddr = UINT64_MAX - 0x100; }
static void segment_in_low_area(uint8_t *buf, size_t *size) { elf_segment(buf)->p_paddr = 0x90000; }
static void entry_outside(uint8_t *buf, size_t *size) { elf_header(buf)->e_entry = 0x2000000; }
static void no_load_segment(uint8_t *buf, size_t *size) { elf_segment(buf)->p_type = PT_NOTE; }
static void bad_boot_flag(uint8_t *buf, size_t *size) { setup_header(buf)->boot_flag = 0; }
static void bad_hdrs(uint8_t *buf, size_t *size) { memcpy(&setup_header(buf)->header, "HdrX", 4); }
static void protocol_2_11(uint8_t *buf, size_t *size) { setup_header(buf)->version = 0x020b; }
static void no_kernel_64(uint8_t *buf, size_t *size) { setup_header(buf)->xloadflags = 0x0002; }
static void zimage(uint8_t *buf, size_t *size) { setup_header(buf)->loadflags = 0; }
static void setup_sects_past_end(uint8_t *buf, size_t *size) { setup_header(buf)->setup_sects = 200; }
static void truncate_code(uint8_t *buf, size_t *size) { *size -= 100; }
static void truncate_before_header(uint8_t *buf, size_t *size) { *size = 0x200; }
static void init_size_past_ram(uint8_t *buf, size_t *size) { setup_header(buf)->init_size = 0xff000000; }
static void pref_address_overflows(uint8_t *buf, size_t *size) { setup_header(buf)->pref_address = UINT64_MAX - 16; }
static void pref_address_low(uint8_t *buf, size_t *size)
{
	setup_header(buf)->pref_address = 0x10000;
	setup_header(buf)->relocatable_kernel = 0;
}

static const struct malformed_case malformed_cases[] = {
	{ "empty file", FIXTURE_ELF, empty_file, -ENOEXEC, "kernel file is empty" },
	{ "truncated ELF header", FIXTURE_ELF, truncate_elf_header, -ENOEXEC, "ELF header is truncated: the file has 40 of 64 bytes" },
	{ "ELF32 class", FIXTURE_ELF, set_elf_class_32, -ENOEXEC, "ELF class 1 is not ELF64" },
	{ "big-endian ELF", FIXTURE_ELF, set_big_endian, -ENOEXEC, "not little-endian" },
	{ "i386 machine", FIXTURE_ELF, set_machine_i386, -ENOEXEC, "ELF machine 3 is not x86-64" },
	{ "shared object", FIXTURE_ELF, set_type_dyn, -ENOEXEC, "ELF type 3 is not an executable" },
	{ "wrong phentsize", FIXTURE_ELF, set_phentsize, -ENOEXEC, "program header size 32 is invalid" },
	{ "no program headers", FIXTURE_ELF, set_no_phdrs, -ENOEXEC, "program header count 0 is invalid" },
	{ "phdrs past end of file", FIXTURE_ELF, phdrs_past_end, -ENOEXEC, "program header table at offset 0x136 (56 bytes) lies past the end of the file (320 bytes)" },
	{ "e_phoff overflows", FIXTURE_ELF, phoff_overflows, -ENOEXEC, "program header table at offset 0xfffffffffffffff7" },
	{ "p_offset+p_filesz past end", FIXTURE_ELF, filesz_past_end, -ENOEXEC, "ELF segment 0: file range at offset 0x100 (0x1000 bytes) lies past the end of the file" },
	{ "p_offset overflows", FIXTURE_ELF, offset_overflows, -ENOEXEC, "ELF segment 0: file range at offset 0xfffffffffffffff7" },
	{ "p_filesz > p_memsz", FIXTURE_ELF, filesz_over_memsz, -ENOEXEC, "p_filesz 0x40 is larger than p_memsz 0x10" },
	{ "segment past guest RAM", FIXTURE_ELF, segment_past_ram, -EFBIG, "ELF segment 0 at guest physical address 0xffff800 (0x1000 bytes) lies outside guest RAM [0, 0x10000000)" },
	{ "segment address wraps", FIXTURE_ELF, segment_wraps, -EFBIG, "lies outside guest RAM" },
	{ "segment below 1 MiB", FIXTURE_ELF, segment_in_low_area, -EINVAL, "ELF segment 0 at guest physical address 0x90000 overlaps the boot structures below 1 MiB" },
	{ "entry outside segments", FIXTURE_ELF, entry_outside, -ENOEXEC, "ELF entry point 0x2000000 lies outside the loaded range [0x1000000, 0x1001000)" },
	{ "no PT_LOAD segment", FIXTURE_ELF, no_load_segment, -ENOEXEC, "has no PT_LOAD segment" },
	{ "bad boot_flag", FIXTURE_BZIMAGE, bad_boot_flag, -ENOEXEC, "not an ELF vmlinux or a bzImage: boot_flag is 0x0000" },
	{ "bad HdrS", FIXTURE_BZIMAGE, bad_hdrs, -ENOEXEC, "bad bzImage setup header magic 0x58726448" },
	{ "protocol 2.11", FIXTURE_BZIMAGE, protocol_2_11, -ENOEXEC, "boot protocol 2.11 is too old: the 64-bit entry needs 2.12 or newer" },
	{ "no XLF_KERNEL_64", FIXTURE_BZIMAGE, no_kernel_64, -ENOEXEC, "XLF_KERNEL_64 is not set in xloadflags 0x0002" },
	{ "zImage", FIXTURE_BZIMAGE, zimage, -ENOEXEC, "LOADED_HIGH not set" },
	{ "setup_sects past end", FIXTURE_BZIMAGE, setup_sects_past_end, -ENOEXEC, "setup_sects 200 puts the protected-mode code at offset 102912, past the end of the file (5120 bytes)" },
	{ "truncated protected-mode code", FIXTURE_BZIMAGE, truncate_code, -ENOEXEC, "protected-mode code is truncated: syssize says 4096 bytes, the file has 3996" },
	{ "too short for setup header", FIXTURE_BZIMAGE, truncate_before_header, -ENOEXEC, "too short for a bzImage setup header (512 bytes)" },
	{ "init_size past guest RAM", FIXTURE_BZIMAGE, init_size_past_ram, -EFBIG, "bzImage needs guest RAM [0x100000, 0x100000000)" },
	{ "pref_address below 1 MiB", FIXTURE_BZIMAGE, pref_address_low, -ENOEXEC, "bzImage would decompress to 0x10000, below the 1 MiB load address" },
	{ "pref_address overflows", FIXTURE_BZIMAGE, pref_address_overflows, -ENOEXEC, "pref_address 0xffffffffffffffef and init_size 0x800000 overflow" },
};

static void loader_rejects_malformed_files(void **state)
{
	struct guest_memory mem;
	static uint8_t file[BZ_FILE_SIZE];

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	for (size_t i = 0; i < sizeof(malformed_cases) / sizeof(malformed_cases[0]); i++) {
		const struct malformed_case *c = &malformed_cases[i];
		struct kernel_image image;
		struct sm_error err = { 0 };
		size_t size = c->fixture == FIXTURE_ELF ? make_elf(file) : make_bzimage(file, 0x7fffffff);
		int ret;

		c->mutate(file, &size);
		ret = kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err);
		if (ret != c->expected || !strstr(err.message, c->message) ||
		    strncmp(err.message, KERNEL_PATH ": ", strlen(KERNEL_PATH) + 2) != 0)
			fail_msg("case \"%s\": returned %d, expected %d; message \"%s\", expected \"%s: ...%s...\"",
				 c->name, ret, c->expected, err.message, KERNEL_PATH, c->message);
	}
	guest_memory__destroy(&mem);
}

static void loader_rejects_segment_above_4g(void **state)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	uint8_t file[ELF_FILE_SIZE];
	size_t size = make_elf(file);

	/* RAM exists at 4 GiB in a 5 GiB guest, but only low RAM is identity-mapped at entry. */
	elf_segment(file)->p_paddr = 0x100000000ull;
	elf_header(file)->e_entry = 0x100000000ull;
	assert_int_equal(guest_memory__init(&mem, 5ull << 30), 0);
	assert_int_equal(kernel_loader__load(&mem, KERNEL_PATH, file, size, &image, &err), -EFBIG);
	assert_non_null(strstr(err.message, "lies outside guest RAM [0, 0xc0000000)"));
	guest_memory__destroy(&mem);
}

/* ---- The real guest kernel, when it has been built -------------------- */

/* Loads the first /var/cache/smcore/kernel/<hash>/`name`, or skips when no kernel has been built. */
static void load_built_kernel(const char *name, int is_bzimage)
{
	struct guest_memory mem;
	struct kernel_image image;
	struct sm_error err = { 0 };
	char pattern[128];
	glob_t found;
	struct stat st;
	uint8_t *data;
	int fd;

	snprintf(pattern, sizeof(pattern), "/var/cache/smcore/kernel/*/%s", name);
	if (glob(pattern, 0, NULL, &found) != 0) {
		skip();
		return;
	}
	fd = open(found.gl_pathv[0], O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(data != MAP_FAILED);
	close(fd);

	assert_int_equal(guest_memory__init(&mem, GUEST_RAM), 0);
	if (kernel_loader__load(&mem, found.gl_pathv[0], data, st.st_size, &image, &err) != 0)
		fail_msg("%s", err.message);
	assert_int_equal(image.is_bzimage, is_bzimage);
	assert_true(image.load_start >= 0x100000);
	assert_true(image.entry >= image.load_start);
	assert_true(image.entry < image.load_end);
	assert_true(image.load_end <= GUEST_RAM);
	if (is_bzimage)
		assert_int_equal(image.entry, 0x100200);

	guest_memory__destroy(&mem);
	munmap(data, st.st_size);
	globfree(&found);
}

static void loader_loads_built_vmlinux(void **state)
{
	load_built_kernel("vmlinux", 0);
}

static void loader_loads_built_bzimage(void **state)
{
	load_built_kernel("bzImage", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loader_loads_elf_vmlinux),
		cmocka_unit_test(loader_maps_aligned_segment),
		cmocka_unit_test(loader_loads_bzimage),
		cmocka_unit_test(loader_caps_setup_header_size),
		cmocka_unit_test(loader_bzimage_aligned_above_pref),
		cmocka_unit_test(loader_rejects_malformed_files),
		cmocka_unit_test(loader_rejects_segment_above_4g),
		cmocka_unit_test(loader_loads_built_vmlinux),
		cmocka_unit_test(loader_loads_built_bzimage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
