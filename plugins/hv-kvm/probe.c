// SPDX-License-Identifier: Apache-2.0
/*
 * The probe: a tiny long-mode guest that starts at CPL 3 and checks what a
 * Linux guest needs from KVM beyond running ring-3 code:
 *
 *  1. exception delivery: a user-mode access to an unmapped page must reach
 *     the #PF handler through the IDT, on the stack from TSS.RSP0, with the
 *     architectural error code and CR2;
 *  2. SYSCALL: a user-mode SYSCALL must enter the code at LSTAR at CPL 0. That
 *     code proves it runs at CPL 0 by executing OUT with IOPL 0. If SYSCALL
 *     jumps to LSTAR but stays at CPL 3, fetching the supervisor page faults
 *     and the #PF handler reports it instead.
 *
 * Each check runs in its own single-vCPU VM without an irqchip. A watchdog
 * thread kicks the vCPU when the probe has no verdict after 2 seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "hv_kvm.h"
#include "msr.h"
#include "probe_layout.h"

#define PROBE_TIMEOUT_NS 2000000000ull
#define PROBE_MAX_EXITS 16
#define PROBE_MAX_VALUES 3

#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_USER 0x4ull

#define PF_ERROR_PRESENT 0x1u
#define PF_ERROR_WRITE 0x2u
#define PF_ERROR_USER 0x4u

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* RFLAGS bits SYSCALL clears: TF, IF, DF, IOPL, NT, AC. */
#define PROBE_SFMASK 0x47700ull

#define TESTBED_HINT \
	"Run on a host with full KVM (bare metal or nested VMX/SVM), or inside the testbed of the smcore checkout: tests/testbed/run build/bin/smcore ..."

extern const uint8_t probe_kernel_start[], probe_kernel_end[];
extern const uint8_t probe_syscall_entry[], probe_page_fault[], probe_fault_stubs[];
extern const uint8_t probe_user_start[], probe_user_end[];
extern const uint8_t probe_user_syscall[], probe_user_touch[];

struct probe {
	const struct smcore_host *host;
	struct smcore_ctx *ctx;
	uint8_t *memory;
	struct timespec deadline;

	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	bool timed_out;
	struct smcore_vcpu *running; /* the vCPU the watchdog kicks */
};

struct probe_result {
	uint32_t values[PROBE_MAX_VALUES];
	int count;
	char failure[200];           /* empty when the guest gave a verdict */
};

static uint64_t kernel_address(const uint8_t *symbol)
{
	return PROBE_KERNEL_CODE + (uint64_t)(symbol - probe_kernel_start);
}

static uint64_t user_address(const uint8_t *symbol)
{
	return PROBE_USER_CODE + (uint64_t)(symbol - probe_user_start);
}

static void put64(uint8_t *memory, uint64_t gpa, uint64_t value)
{
	memcpy(memory + gpa, &value, sizeof(value));
}

static void build_page_tables(uint8_t *memory)
{
	put64(memory, PROBE_PML4, PROBE_PDPT | PTE_PRESENT | PTE_WRITE | PTE_USER);
	put64(memory, PROBE_PDPT, PROBE_PD | PTE_PRESENT | PTE_WRITE | PTE_USER);
	put64(memory, PROBE_PD, PROBE_PT | PTE_PRESENT | PTE_WRITE | PTE_USER);

	put64(memory, PROBE_PT + (PROBE_GDT >> 12) * 8, PROBE_GDT | PTE_PRESENT | PTE_WRITE);
	put64(memory, PROBE_PT + (PROBE_KERNEL_CODE >> 12) * 8, PROBE_KERNEL_CODE | PTE_PRESENT);
	put64(memory, PROBE_PT + (PROBE_KERNEL_STACK >> 12) * 8,
	      PROBE_KERNEL_STACK | PTE_PRESENT | PTE_WRITE);
	put64(memory, PROBE_PT + (PROBE_USER_CODE >> 12) * 8,
	      PROBE_USER_CODE | PTE_PRESENT | PTE_USER);
	put64(memory, PROBE_PT + (PROBE_USER_STACK >> 12) * 8,
	      PROBE_USER_STACK | PTE_PRESENT | PTE_WRITE | PTE_USER);
}

static uint64_t idt_gate_low(uint64_t handler)
{
	/* Present, DPL 0, 64-bit interrupt gate (type 0xe), kernel CS, no IST. */
	return (handler & 0xffff) | ((uint64_t)PROBE_SEL_KERNEL_CS << 16) | (0x8eull << 40) |
	       (((handler >> 16) & 0xffff) << 48);
}

static void build_descriptor_tables(uint8_t *memory)
{
	uint64_t tss = PROBE_TSS;
	uint16_t iomap_base = 104;
	uint64_t rsp0 = PROBE_KERNEL_STACK + 0x1000;

	put64(memory, PROBE_GDT + 0x08, 0x00af9b000000ffffull); /* kernel code, 64-bit */
	put64(memory, PROBE_GDT + 0x10, 0x00cf93000000ffffull); /* kernel data */
	put64(memory, PROBE_GDT + 0x18, 0x00cff3000000ffffull); /* user data, DPL 3 */
	put64(memory, PROBE_GDT + 0x20, 0x00affb000000ffffull); /* user code, 64-bit, DPL 3 */
	/* Busy 64-bit TSS, limit 103: the I/O bitmap offset points past the limit, so none exists. */
	put64(memory, PROBE_GDT + 0x28, 103 | ((tss & 0xffffff) << 16) | (0x8bull << 40) |
	      (((tss >> 24) & 0xff) << 56));
	put64(memory, PROBE_GDT + 0x30, tss >> 32);

	for (int vector = 0; vector < 32; vector++) {
		uint64_t handler = kernel_address(probe_fault_stubs) + 16 * vector;

		if (vector == 14)
			handler = kernel_address(probe_page_fault);
		put64(memory, PROBE_IDT + vector * 16, idt_gate_low(handler));
		put64(memory, PROBE_IDT + vector * 16 + 8, handler >> 32);
	}

	put64(memory, PROBE_TSS + 4, rsp0);
	memcpy(memory + PROBE_TSS + 102, &iomap_base, sizeof(iomap_base));
}

static void build_guest(uint8_t *memory)
{
	build_page_tables(memory);
	build_descriptor_tables(memory);
	memcpy(memory + PROBE_KERNEL_CODE, probe_kernel_start,
	       (size_t)(probe_kernel_end - probe_kernel_start));
	memcpy(memory + PROBE_USER_CODE, probe_user_start,
	       (size_t)(probe_user_end - probe_user_start));
}

static struct smcore_x86_segment segment(uint16_t selector, uint8_t type, uint8_t dpl, bool code)
{
	struct smcore_x86_segment seg = {
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = dpl, .db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
	};

	return seg;
}

/* The register state of a user-mode entry at `rip`: CPL 3, IOPL 0, interrupts off. */
static void user_regs(struct smcore_x86_regs *regs, uint64_t rip)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = rip;
	regs->rflags = 0x2;
	regs->rsp = PROBE_USER_STACK + 0x1000;
	regs->cs = segment(PROBE_SEL_USER_CS, 0xb, 3, true);
	regs->ss = segment(PROBE_SEL_USER_DS, 0x3, 3, false);
	regs->ds = regs->ss;
	regs->es = regs->ss;
	regs->fs = regs->ss;
	regs->gs = regs->ss;
	regs->tr = (struct smcore_x86_segment){ .base = PROBE_TSS, .limit = 103,
		.selector = PROBE_SEL_TSS, .type = 0xb, .present = 1 };
	regs->ldt = (struct smcore_x86_segment){ .type = 0x2 };
	regs->gdt = (struct smcore_x86_dtable){ .base = PROBE_GDT, .limit = 0x37 };
	regs->idt = (struct smcore_x86_dtable){ .base = PROBE_IDT, .limit = 32 * 16 - 1 };
	regs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
	regs->cr3 = PROBE_PML4;
	regs->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	regs->efer = EFER_SCE | EFER_LME | EFER_LMA;
}

static int set_syscall_msrs(struct smcore_vcpu *vcpu)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[3];
	} msrs = {
		.header.nmsrs = 3,
		.entries = {
			{ .index = MSR_STAR, .data = (0x10ull << 48) | ((uint64_t)PROBE_SEL_KERNEL_CS << 32) },
			{ .index = MSR_LSTAR, .data = kernel_address(probe_syscall_entry) },
			{ .index = MSR_SYSCALL_MASK, .data = PROBE_SFMASK },
		},
	};

	if (ioctl(vcpu->fd, KVM_SET_MSRS, &msrs) != 3)
		return vcpu->vm->host->error(vcpu->vm->ctx, errno ? errno : EINVAL,
					     "probe: KVM_SET_MSRS (STAR, LSTAR, SFMASK) on vCPU 0 failed");
	return 0;
}

static void *watchdog(void *opaque)
{
	struct probe *probe = opaque;

	pthread_mutex_lock(&probe->lock);
	while (!probe->done) {
		if (pthread_cond_timedwait(&probe->done_cond, &probe->lock, &probe->deadline) == ETIMEDOUT) {
			probe->timed_out = true;
			if (probe->running)
				vcpu__kick(probe->running);
			break;
		}
	}
	pthread_mutex_unlock(&probe->lock);
	return NULL;
}

static void set_running(struct probe *probe, struct smcore_vcpu *vcpu)
{
	pthread_mutex_lock(&probe->lock);
	probe->running = vcpu;
	if (vcpu && probe->timed_out)
		vcpu__kick(vcpu);
	pthread_mutex_unlock(&probe->lock);
}

static bool verdict_complete(const struct probe_result *result)
{
	uint32_t first = result->values[0];

	if (result->count == 0)
		return false;
	if ((first & 0xffff0000u) == (PROBE_FAULT | (14u << 16)))
		return result->count == 3;
	return true;
}

static void describe_exit(const struct smcore_exit *exit, char *buf, size_t len)
{
	switch (exit->reason) {
	case SMCORE_EXIT_IO:
		snprintf(buf, len, "unexpected port I/O exit (port 0x%x, %u bytes)", exit->io.port, exit->io.size);
		break;
	case SMCORE_EXIT_MMIO:
		snprintf(buf, len, "unexpected MMIO exit at GPA 0x%llx", (unsigned long long)exit->mmio.gpa);
		break;
	case SMCORE_EXIT_HLT:
		snprintf(buf, len, "unexpected halt");
		break;
	case SMCORE_EXIT_SHUTDOWN:
		snprintf(buf, len, "unexpected shutdown (triple fault)");
		break;
	case SMCORE_EXIT_INTERNAL_ERROR:
		snprintf(buf, len, "%s", exit->error.message);
		break;
	default:
		snprintf(buf, len, "unexpected exit %u", exit->reason);
		break;
	}
}

static void run_guest(struct probe *probe, struct smcore_vcpu *vcpu, struct probe_result *result)
{
	struct smcore_exit exit;

	for (int n = 0; n < PROBE_MAX_EXITS && !verdict_complete(result); n++) {
		int ret = vcpu__run(vcpu, &exit);

		if (ret) {
			snprintf(result->failure, sizeof(result->failure), "KVM_RUN failed: %s", strerror(-ret));
			return;
		}
		if (exit.reason == SMCORE_EXIT_INTERRUPTED) {
			pthread_mutex_lock(&probe->lock);
			bool timed_out = probe->timed_out;
			pthread_mutex_unlock(&probe->lock);
			if (timed_out) {
				snprintf(result->failure, sizeof(result->failure),
					 "the probe guest gave no verdict within 2 s");
				return;
			}
			continue;
		}
		if (exit.reason == SMCORE_EXIT_IO && exit.io.port == PROBE_PORT && exit.io.is_write &&
		    exit.io.size == 4 && exit.io.count == 1) {
			memcpy(&result->values[result->count++], exit.io.data, 4);
			continue;
		}
		describe_exit(&exit, result->failure, sizeof(result->failure));
		return;
	}
	if (!verdict_complete(result))
		snprintf(result->failure, sizeof(result->failure), "too many exits without a verdict");
}

/* Runs the probe guest from `entry` in a fresh VM; returns 0 with `result` filled, or a setup error. */
static int run_check(struct probe *probe, const uint8_t *entry, struct probe_result *result)
{
	struct smcore_vm_config config = {
		.size = sizeof(config), .vcpus = 1, .memory_bytes = PROBE_MEMORY_SIZE,
		.cpu_template = SMCORE_CPU_TEMPLATE_HOST, .flags = SMCORE_VM_NO_IRQCHIP,
	};
	struct smcore_x86_regs regs;
	struct smcore_vcpu *vcpu;
	struct smcore_vm *vm;
	int ret;

	memset(result, 0, sizeof(*result));
	ret = vm__create(probe->host, probe->ctx, &config, &vm);
	if (ret)
		return ret;
	ret = vm__map_memory(vm, 0, 0, PROBE_MEMORY_SIZE, probe->memory);
	if (ret)
		goto out_vm;
	ret = vcpu__create(vm, 0, &vcpu);
	if (ret)
		goto out_vm;
	ret = set_syscall_msrs(vcpu);
	if (ret)
		goto out_vcpu;
	user_regs(&regs, user_address(entry));
	ret = vcpu__set_regs(vcpu, &regs);
	if (ret)
		goto out_vcpu;

	set_running(probe, vcpu);
	run_guest(probe, vcpu, result);
	set_running(probe, NULL);

out_vcpu:
	vcpu__destroy(vcpu);
out_vm:
	vm__destroy(vm);
	return ret;
}

/* Check 1: the #PF from an unmapped user read arrives with error code, CR2 and the TSS stack. */
static void judge_exception_delivery(const struct probe_result *result, char *reason, size_t len)
{
	uint32_t expected_rsp = PROBE_KERNEL_STACK + 0x1000 - 6 * 8;
	uint32_t first = result->values[0];

	if (result->failure[0]) {
		snprintf(reason, len, "%s", result->failure);
	} else if ((first & 0xffff0000u) != (PROBE_FAULT | (14u << 16))) {
		snprintf(reason, len, "the guest reported exception vector %u instead of #PF", (first >> 16) & 0xff);
	} else if ((first & (PF_ERROR_PRESENT | PF_ERROR_WRITE | PF_ERROR_USER)) != PF_ERROR_USER) {
		snprintf(reason, len, "#PF error code 0x%x, expected a user-mode read of a non-present page",
			 first & 0xffff);
	} else if (result->values[1] != PROBE_UNMAPPED) {
		snprintf(reason, len, "CR2 was 0x%x, expected 0x%x", result->values[1], PROBE_UNMAPPED);
	} else if (result->values[2] != expected_rsp) {
		snprintf(reason, len, "the #PF handler ran with RSP 0x%x, expected 0x%x from TSS.RSP0",
			 result->values[2], expected_rsp);
	}
}

/* Check 2: SYSCALL from CPL 3 reaches LSTAR at CPL 0 with the kernel CS from STAR. */
static void judge_syscall(const struct probe_result *result, char *reason, size_t len)
{
	uint32_t first = result->values[0];

	if (result->failure[0]) {
		snprintf(reason, len, "%s", result->failure);
	} else if ((first & 0xffff0000u) == (PROBE_FAULT | (14u << 16))) {
		snprintf(reason, len, "it faulted at CPL 3 with #PF error code 0x%x at 0x%x (nested or paravirtual KVM)",
			 first & 0xffff, result->values[1]);
	} else if ((first & 0xff000000u) == PROBE_FAULT) {
		snprintf(reason, len, "it raised exception vector %u", (first >> 16) & 0xff);
	} else if (first != (PROBE_SYSCALL_REACHED | PROBE_SEL_KERNEL_CS)) {
		snprintf(reason, len, "the guest kernel reported 0x%x", first);
	}
}

static uint64_t elapsed_ms(const struct timespec *start)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (int64_t)(now.tv_sec - start->tv_sec) * 1000000000 + (now.tv_nsec - start->tv_nsec);
	return (uint64_t)ns / 1000000;
}

static int run_checks(struct probe *probe)
{
	struct probe_result result;
	char reason[240] = "";
	int ret;

	ret = run_check(probe, probe_user_touch, &result);
	if (ret)
		return ret;
	judge_exception_delivery(&result, reason, sizeof(reason));
	if (reason[0])
		return probe->host->error(probe->ctx, ENOTSUP,
					  "probe: this host's KVM cannot run Linux guests: a user-mode page fault in the probe guest was not delivered to the guest kernel: %s. "
					  TESTBED_HINT, reason);

	ret = run_check(probe, probe_user_syscall, &result);
	if (ret)
		return ret;
	judge_syscall(&result, reason, sizeof(reason));
	if (reason[0])
		return probe->host->error(probe->ctx, ENOTSUP,
					  "probe: this host's KVM cannot run Linux guests: a user-mode SYSCALL in the probe guest did not reach the guest kernel: %s. "
					  TESTBED_HINT, reason);
	return 0;
}

int probe__run(const struct smcore_host *host, struct smcore_ctx *ctx)
{
	struct probe probe = { .host = host, .ctx = ctx };
	struct timespec start;
	pthread_t thread;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &start);
	probe.memory = mmap(NULL, PROBE_MEMORY_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (probe.memory == MAP_FAILED)
		return host->error(ctx, errno, "probe: cannot allocate guest memory: %s",
				   strerror(errno));
	build_guest(probe.memory);

	pthread_mutex_init(&probe.lock, NULL);
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&probe.done_cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	probe.deadline = start;
	probe.deadline.tv_sec += PROBE_TIMEOUT_NS / 1000000000ull;
	ret = pthread_create(&thread, NULL, watchdog, &probe);
	if (ret) {
		ret = host->error(ctx, ret, "probe: cannot start the watchdog thread: %s",
				  strerror(ret));
		goto out_unmap;
	}

	ret = run_checks(&probe);

	pthread_mutex_lock(&probe.lock);
	probe.done = true;
	pthread_cond_signal(&probe.done_cond);
	pthread_mutex_unlock(&probe.lock);
	pthread_join(thread, NULL);

	if (ret == 0)
		host->log(ctx, SMCORE_LOG_INFO,
			  "probe: exception delivery and user-mode SYSCALL checks passed in %llu ms",
			  (unsigned long long)elapsed_ms(&start));
out_unmap:
	pthread_cond_destroy(&probe.done_cond);
	pthread_mutex_destroy(&probe.lock);
	munmap(probe.memory, PROBE_MEMORY_SIZE);
	return ret;
}
