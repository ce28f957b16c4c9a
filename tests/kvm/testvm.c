// SPDX-License-Identifier: Apache-2.0
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testvm.h"

#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_USER 0x4ull
#define PTE_LARGE 0x80ull

extern const uint8_t guest_kernel_start[], guest_kernel_end[];
extern const uint8_t guest_gp_handler[], guest_fault_stubs[];
extern const uint8_t guest_user_start[], guest_user_end[];

struct smcore_accel_ops testvm_ops;
static char last_error[512];
static char last_log[512];

static void host_log(struct smcore_ctx *ctx, enum smcore_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
	fprintf(stderr, "[%s] hv-kvm: %s\n", level <= SMCORE_LOG_DEBUG ? names[level] : "?", last_log);
}

static int host_error(struct smcore_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -err;
}

const struct smcore_host testvm_host = {
	.size = sizeof(struct smcore_host),
	.log = host_log,
	.error = host_error,
};

const char *testvm__last_error(void)
{
	return last_error;
}

const char *testvm__last_log(void)
{
	return last_log;
}

void testvm__clear_error(void)
{
	last_error[0] = '\0';
	last_log[0] = '\0';
}

int testvm__check_kvm(char *reason, size_t len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		snprintf(reason, len, "%s", strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}

const char *testvm__plugin_path(void)
{
	const char *path = getenv("SMCORE_HV_KVM_PLUGIN");

	return path && path[0] ? path : HV_KVM_PLUGIN_PATH;
}

int testvm__load_plugin(const char *path, char *reason, size_t len)
{
	const struct smcore_plugin_descriptor *descriptor;
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		snprintf(reason, len, "dlopen: %s", dlerror());
		return -1;
	}
	descriptor = dlsym(handle, SMCORE_PLUGIN_DESCRIPTOR_SYMBOL);
	if (!descriptor) {
		snprintf(reason, len, "%s: no symbol %s", path, SMCORE_PLUGIN_DESCRIPTOR_SYMBOL);
		return -1;
	}
	if (descriptor->abi_major != SMCORE_ABI_MAJOR || descriptor->kind != SMCORE_PLUGIN_ACCELERATOR ||
	    descriptor->ops_size > sizeof(testvm_ops)) {
		snprintf(reason, len, "%s: ABI %u, kind %u, ops of %u bytes: not an accelerator for ABI %u",
			 path, descriptor->abi_major, descriptor->kind, descriptor->ops_size, SMCORE_ABI_MAJOR);
		return -1;
	}
	memset(&testvm_ops, 0, sizeof(testvm_ops));
	memcpy(&testvm_ops, descriptor->ops, descriptor->ops_size);
	return 0;
}

static void put64(uint8_t *memory, uint64_t gpa, uint64_t value)
{
	memcpy(memory + gpa, &value, sizeof(value));
}

static void map_page(uint8_t *memory, uint64_t gpa, uint64_t flags)
{
	put64(memory, GUEST_PT_LOW + (gpa >> 12) * 8, gpa | flags);
}

static void build_page_tables(uint8_t *memory)
{
	uint64_t table = PTE_PRESENT | PTE_WRITE | PTE_USER;

	put64(memory, GUEST_PML4, GUEST_PDPT | table);
	put64(memory, GUEST_PDPT, GUEST_PD_LOW | table);
	put64(memory, GUEST_PDPT + 3 * 8, GUEST_PD_HOLE | table);
	put64(memory, GUEST_PD_LOW, GUEST_PT_LOW | table);
	put64(memory, GUEST_PD_HOLE + ((GUEST_MMIO_BASE - 0xc0000000ull) >> 21) * 8,
	      GUEST_MMIO_BASE | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE);

	map_page(memory, GUEST_GDT, PTE_PRESENT | PTE_WRITE);
	map_page(memory, GUEST_KERNEL_CODE, PTE_PRESENT);
	for (uint64_t i = 0; i < GUEST_MAX_VCPUS; i++)
		map_page(memory, GUEST_KERNEL_STACKS + i * 0x1000, PTE_PRESENT | PTE_WRITE);
	for (uint64_t off = 0; off < GUEST_USER_CODE_SIZE; off += 0x1000)
		map_page(memory, GUEST_USER_CODE + off, PTE_PRESENT | PTE_USER);
	for (uint64_t off = 0; off < GUEST_USER_DATA_SIZE; off += 0x1000)
		map_page(memory, GUEST_USER_DATA + off, PTE_PRESENT | PTE_WRITE | PTE_USER);
}

static uint64_t kernel_address(const uint8_t *symbol)
{
	return GUEST_KERNEL_CODE + (uint64_t)(symbol - guest_kernel_start);
}

static void build_descriptor_tables(uint8_t *memory)
{
	put64(memory, GUEST_GDT + 0x08, 0x00af9b000000ffffull); /* kernel code, 64-bit */
	put64(memory, GUEST_GDT + 0x10, 0x00cf93000000ffffull); /* kernel data */
	put64(memory, GUEST_GDT + 0x18, 0x00cff3000000ffffull); /* user data, DPL 3 */
	put64(memory, GUEST_GDT + 0x20, 0x00affb000000ffffull); /* user code, 64-bit, DPL 3 */

	/*
	 * Each vCPU has a busy 64-bit TSS whose I/O bitmap allows ports 0 to
	 * 0x3ff at CPL 3. RFLAGS.IOPL 3 would be enough on a CPU, but some nested
	 * KVMs run ring-3 guest code with IOPL 0 and honour only the bitmap.
	 */
	for (uint64_t i = 0; i < GUEST_MAX_VCPUS; i++) {
		uint64_t tss = GUEST_TSS + i * GUEST_TSS_STRIDE;
		uint64_t rsp0 = GUEST_KERNEL_STACKS + (i + 1) * 0x1000;
		uint16_t iomap_base = 104;

		put64(memory, GUEST_GDT + 0x28 + i * 16, GUEST_TSS_LIMIT | ((tss & 0xffffff) << 16) |
		      (0x8bull << 40) | (((tss >> 24) & 0xff) << 56));
		put64(memory, GUEST_GDT + 0x30 + i * 16, tss >> 32);
		put64(memory, tss + 4, rsp0);
		memcpy(memory + tss + 102, &iomap_base, sizeof(iomap_base));
		memory[tss + GUEST_TSS_LIMIT] = 0xff; /* the byte after the bitmap must have all bits set */
	}

	for (uint64_t vector = 0; vector < 32; vector++) {
		uint64_t handler = kernel_address(guest_fault_stubs) + vector * 16;

		if (vector == 13)
			handler = kernel_address(guest_gp_handler);
		/* Present, DPL 0, 64-bit interrupt gate, kernel CS. */
		put64(memory, GUEST_IDT + vector * 16, (handler & 0xffff) |
		      ((uint64_t)GUEST_SEL_KERNEL_CS << 16) | (0x8eull << 40) |
		      (((handler >> 16) & 0xffff) << 48));
		put64(memory, GUEST_IDT + vector * 16 + 8, handler >> 32);
	}
}

static void build_guest(uint8_t *memory)
{
	build_page_tables(memory);
	build_descriptor_tables(memory);
	memcpy(memory + GUEST_KERNEL_CODE, guest_kernel_start,
	       (size_t)(guest_kernel_end - guest_kernel_start));
	memcpy(memory + GUEST_USER_CODE, guest_user_start,
	       (size_t)(guest_user_end - guest_user_start));
}

int testvm__create(struct testvm *t, uint32_t vcpus, uint32_t cpu_template, uint32_t flags)
{
	struct smcore_vm_config config = {
		.size = sizeof(config), .vcpus = vcpus, .memory_bytes = GUEST_MEMORY_SIZE,
		.cpu_template = cpu_template, .flags = flags,
	};
	int ret;

	memset(t, 0, sizeof(*t));
	if (vcpus > GUEST_MAX_VCPUS)
		return -EINVAL;
	t->vcpus = vcpus;
	t->memory = mmap(NULL, GUEST_MEMORY_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->memory == MAP_FAILED)
		return -errno;
	build_guest(t->memory);

	ret = testvm_ops.create(&testvm_host, NULL, &config, &t->vm);
	if (ret)
		goto err_unmap;
	ret = testvm_ops.map_memory(t->vm, 0, 0, GUEST_MEMORY_SIZE, t->memory);
	if (ret)
		goto err_destroy;
	for (uint32_t i = 0; i < vcpus; i++) {
		ret = testvm_ops.create_vcpu(t->vm, i, &t->vcpu[i]);
		if (ret)
			goto err_destroy;
	}
	return 0;

err_destroy:
	for (uint32_t i = 0; i < vcpus; i++) {
		if (t->vcpu[i])
			testvm_ops.destroy_vcpu(t->vcpu[i]);
	}
	testvm_ops.destroy(t->vm);
err_unmap:
	munmap(t->memory, GUEST_MEMORY_SIZE);
	memset(t, 0, sizeof(*t));
	return ret;
}

static struct smcore_x86_segment flat_segment(uint16_t selector, uint8_t type, bool code)
{
	struct smcore_x86_segment seg = {
		.limit = 0xffffffff, .selector = selector, .type = type, .present = 1, .dpl = 3,
		.db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
	};

	return seg;
}

int testvm__start(struct testvm *t, uint32_t index, const uint8_t *entry, const struct testvm_args *args)
{
	struct smcore_x86_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_USER_CODE + (uint64_t)(entry - guest_user_start);
	regs.rflags = 0x3002; /* IOPL 3; the TSS I/O bitmap allows the ports as well */
	regs.rsp = GUEST_USER_DATA + GUEST_USER_DATA_SIZE - index * 0x1000;
	if (args) {
		regs.rbx = args->rbx;
		regs.rcx = args->rcx;
		regs.rdi = args->rdi;
	}
	regs.cs = flat_segment(GUEST_SEL_USER_CS, 0xb, true);
	regs.ss = flat_segment(GUEST_SEL_USER_DS, 0x3, false);
	regs.ds = regs.ss;
	regs.es = regs.ss;
	regs.fs = regs.ss;
	regs.gs = regs.ss;
	regs.tr = (struct smcore_x86_segment){ .base = GUEST_TSS + index * GUEST_TSS_STRIDE, .limit = GUEST_TSS_LIMIT,
		.selector = GUEST_SEL_TSS0 + index * 16, .type = 0xb, .present = 1 };
	regs.ldt = (struct smcore_x86_segment){ .type = 0x2 };
	regs.gdt = (struct smcore_x86_dtable){ .base = GUEST_GDT, .limit = 0x28 + GUEST_MAX_VCPUS * 16 - 1 };
	regs.idt = (struct smcore_x86_dtable){ .base = GUEST_IDT, .limit = t->empty_idt ? 0 : 32 * 16 - 1 };
	regs.cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
	regs.cr3 = GUEST_PML4;
	regs.cr4 = 0x620;      /* OSXMMEXCPT OSFXSR PAE */
	regs.efer = 0x501;     /* LMA LME SCE */
	return testvm_ops.set_regs(t->vcpu[index], &regs);
}

void testvm__destroy(struct testvm *t)
{
	if (!t->vm)
		return;
	for (uint32_t i = 0; i < t->vcpus; i++)
		testvm_ops.destroy_vcpu(t->vcpu[i]);
	testvm_ops.destroy(t->vm);
	munmap(t->memory, GUEST_MEMORY_SIZE);
	memset(t, 0, sizeof(*t));
}

const char *testvm__describe_exit(const struct smcore_exit *exit, char *buf, size_t len)
{
	static const char *const names[] = {
		"NONE", "IO", "MMIO", "HLT", "SHUTDOWN", "RESET", "POWEROFF", "INTERRUPTED", "INTERNAL_ERROR",
	};
	const char *name = exit->reason < sizeof(names) / sizeof(names[0]) ? names[exit->reason] : "?";
	uint32_t value = 0;

	switch (exit->reason) {
	case SMCORE_EXIT_IO:
		memcpy(&value, exit->io.data, exit->io.size <= 4 ? exit->io.size : 4);
		snprintf(buf, len, "IO %s port 0x%x size %u count %u value 0x%x%s",
			 exit->io.is_write ? "write" : "read", exit->io.port, exit->io.size,
			 exit->io.count, value,
			 exit->io.port == GUEST_FAULT_PORT ? " (guest exception)" : "");
		break;
	case SMCORE_EXIT_MMIO:
		snprintf(buf, len, "MMIO %s GPA 0x%llx len %u", exit->mmio.is_write ? "write" : "read",
			 (unsigned long long)exit->mmio.gpa, exit->mmio.len);
		break;
	case SMCORE_EXIT_INTERNAL_ERROR:
		snprintf(buf, len, "INTERNAL_ERROR: %s", exit->error.message);
		break;
	default:
		snprintf(buf, len, "%s", name);
		break;
	}
	return buf;
}
