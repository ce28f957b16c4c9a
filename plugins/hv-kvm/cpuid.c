// SPDX-License-Identifier: Apache-2.0
/*
 * CPUID for each vCPU: KVM_GET_SUPPORTED_CPUID shaped by the CPU template,
 * then the vCPU's APIC id, the topology of `vcpus` single-thread cores in one
 * package, the hypervisor bit and the KVM paravirtual leaves. The baseline
 * masks below are documented bit by bit in docs/cpu-templates.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hv_kvm.h"

#define BIT(n) (1u << (n))

#define CPUID_KVM_SIGNATURE 0x40000000u
#define CPUID_KVM_FEATURES 0x40000001u
#define CPUID_EXT_BASE 0x80000000u

/* Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFSH MMX FXSR SSE SSE2. */
#define BASELINE_1_EDX (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | \
			BIT(8) | BIT(9) | BIT(11) | BIT(12) | BIT(13) | BIT(14) | BIT(15) | \
			BIT(16) | BIT(17) | BIT(19) | BIT(23) | BIT(24) | BIT(25) | BIT(26))
/* Leaf 1 ECX: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 x2APIC POPCNT TSC-deadline. */
#define BASELINE_1_ECX (BIT(0) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(21) | BIT(23) | BIT(24))
/* Leaf 0x80000001 EDX: the AMD copies of leaf 1 EDX bits 0-9, 12-17, 23, 24, plus SYSCALL NX RDTSCP LM. */
#define BASELINE_EXT1_EDX (0x3ff | (0x3fu << 12) | BIT(23) | BIT(24) | \
			   BIT(11) | BIT(20) | BIT(27) | BIT(29))
/* Leaf 0x80000001 ECX: LAHF/SAHF in long mode. */
#define BASELINE_EXT1_ECX BIT(0)
/* Leaf 0x80000007 EDX: invariant TSC. */
#define BASELINE_EXT7_EDX BIT(8)
/* Leaf 0x40000001 EAX: CLOCKSOURCE NOP_IO_DELAY CLOCKSOURCE2 PV_EOI CLOCKSOURCE_STABLE_BIT. */
#define BASELINE_KVM_FEATURES (BIT(0) | BIT(1) | BIT(3) | BIT(6) | BIT(24))

#define BASELINE_MAX_BASIC 0xbu
#define BASELINE_MAX_EXT 0x80000008u

#define CPUID_1_ECX_HYPERVISOR BIT(31)
#define CPUID_1_ECX_TSC_DEADLINE BIT(24)
#define CPUID_1_EDX_HTT BIT(28)
#define CPUID_EXT1_ECX_CMP_LEGACY BIT(1)

/* "AuthenticAMD" and "HygonGenuine" share AMD's topology leaves. */
#define CPUID_VENDOR_AMD_EBX 0x68747541u
#define CPUID_VENDOR_HYGON_EBX 0x6f677948u

#define TOPOLOGY_LEVEL_SMT 1u
#define TOPOLOGY_LEVEL_CORE 2u

struct cpuid_table {
	struct kvm_cpuid2 *cpuid;
	uint32_t capacity;
};

int cpuid__fetch_supported(struct smcore_vm *vm)
{
	uint32_t nent = 128;

	for (;;) {
		struct kvm_cpuid2 *cpuid;

		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return vm->host->error(vm->ctx, ENOMEM, "out of memory for CPUID");
		cpuid->nent = nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
			vm->supported_cpuid = cpuid;
			return 0;
		}
		free(cpuid);
		if (errno != E2BIG || nent >= 4096)
			return vm->host->error(vm->ctx, errno, "KVM_GET_SUPPORTED_CPUID failed: %s",
					       strerror(errno));
		nent *= 2;
	}
}

static struct kvm_cpuid_entry2 *find_entry(struct cpuid_table *table, uint32_t function,
					   uint32_t index)
{
	for (uint32_t i = 0; i < table->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *entry = &table->cpuid->entries[i];

		if (entry->function != function)
			continue;
		if ((entry->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && entry->index != index)
			continue;
		return entry;
	}
	return NULL;
}

static void remove_entries(struct cpuid_table *table, bool (*match)(uint32_t function, uint32_t arg),
			   uint32_t arg)
{
	uint32_t count = 0;

	for (uint32_t i = 0; i < table->cpuid->nent; i++) {
		if (!match(table->cpuid->entries[i].function, arg))
			table->cpuid->entries[count++] = table->cpuid->entries[i];
	}
	table->cpuid->nent = count;
}

static bool match_function(uint32_t function, uint32_t target)
{
	return function == target;
}

/* Returns the entry for (function, index), appending a zeroed one when it is missing. */
static struct kvm_cpuid_entry2 *get_entry(struct cpuid_table *table, uint32_t function,
					  uint32_t index, bool indexed)
{
	struct kvm_cpuid_entry2 *entry = find_entry(table, function, index);

	if (entry)
		return entry;
	if (table->cpuid->nent >= table->capacity)
		return NULL;
	entry = &table->cpuid->entries[table->cpuid->nent++];
	memset(entry, 0, sizeof(*entry));
	entry->function = function;
	entry->index = index;
	entry->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	return entry;
}

static bool baseline_drops(uint32_t function, uint32_t unused)
{
	if (function < CPUID_KVM_SIGNATURE)
		return function > BASELINE_MAX_BASIC || function == 3 || function == 5 ||
		       function == 6 || function == 8 || function == 9 || function == 0xa;
	if (function <= CPUID_KVM_FEATURES)
		return false;
	if (function >= CPUID_EXT_BASE && function <= BASELINE_MAX_EXT)
		return false;
	return true;
}

static void apply_baseline(struct cpuid_table *table)
{
	struct kvm_cpuid_entry2 *entry;

	remove_entries(table, baseline_drops, 0);

	entry = find_entry(table, 0, 0);
	if (entry && entry->eax > BASELINE_MAX_BASIC)
		entry->eax = BASELINE_MAX_BASIC;
	entry = find_entry(table, 1, 0);
	if (entry) {
		entry->ecx &= BASELINE_1_ECX;
		entry->edx &= BASELINE_1_EDX;
	}
	for (uint32_t i = 0; i < table->cpuid->nent; i++) {
		entry = &table->cpuid->entries[i];
		if (entry->function == 7) {
			entry->eax = 0;
			entry->ebx = 0;
			entry->ecx = 0;
			entry->edx = 0;
		}
	}

	entry = find_entry(table, CPUID_EXT_BASE, 0);
	if (entry && entry->eax > BASELINE_MAX_EXT)
		entry->eax = BASELINE_MAX_EXT;
	entry = find_entry(table, CPUID_EXT_BASE + 1, 0);
	if (entry) {
		entry->ecx &= BASELINE_EXT1_ECX;
		entry->edx &= BASELINE_EXT1_EDX;
	}
	entry = find_entry(table, CPUID_EXT_BASE + 7, 0);
	if (entry) {
		entry->eax = 0;
		entry->ebx = 0;
		entry->ecx = 0;
		entry->edx &= BASELINE_EXT7_EDX;
	}
	entry = find_entry(table, CPUID_EXT_BASE + 8, 0);
	if (entry) {
		entry->ebx = 0;
		entry->edx = 0;
	}
	entry = find_entry(table, CPUID_KVM_FEATURES, 0);
	if (entry)
		entry->eax &= BASELINE_KVM_FEATURES;
}

static uint32_t topology_shift(uint32_t vcpus)
{
	uint32_t shift = 0;

	while ((1u << shift) < vcpus)
		shift++;
	return shift;
}

/* Leaves 0xB and 0x1F: one thread per core, `vcpus` cores per package. */
static int set_extended_topology(struct cpuid_table *table, uint32_t function, uint32_t apic_id,
				 uint32_t vcpus)
{
	struct kvm_cpuid_entry2 *entry;

	remove_entries(table, match_function, function);

	entry = get_entry(table, function, 0, true);
	if (!entry)
		return -ENOSPC;
	entry->eax = 0;
	entry->ebx = 1;
	entry->ecx = (TOPOLOGY_LEVEL_SMT << 8) | 0;
	entry->edx = apic_id;

	entry = get_entry(table, function, 1, true);
	if (!entry)
		return -ENOSPC;
	entry->eax = topology_shift(vcpus);
	entry->ebx = vcpus;
	entry->ecx = (TOPOLOGY_LEVEL_CORE << 8) | 1;
	entry->edx = apic_id;

	entry = get_entry(table, function, 2, true);
	if (!entry)
		return -ENOSPC;
	entry->eax = 0;
	entry->ebx = 0;
	entry->ecx = 2;
	entry->edx = apic_id;
	return 0;
}

/* Leaves 4 (Intel) and 0x8000001D (AMD): L1 and L2 per core, L3 shared by the package. */
static void set_cache_sharing(struct cpuid_table *table, uint32_t function, uint32_t vcpus,
			      bool set_core_count)
{
	uint32_t ids = (1u << topology_shift(vcpus)) - 1;

	for (uint32_t i = 0; i < table->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *entry = &table->cpuid->entries[i];
		uint32_t level = (entry->eax >> 5) & 7;

		if (entry->function != function || (entry->eax & 0x1f) == 0)
			continue;
		entry->eax &= ~(0xfffu << 14);
		if (level == 3)
			entry->eax |= ids << 14;
		if (set_core_count)
			entry->eax = (entry->eax & ~(0x3fu << 26)) | (ids << 26);
	}
}

static int set_topology(struct cpuid_table *table, uint32_t apic_id, uint32_t vcpus)
{
	struct kvm_cpuid_entry2 *entry;
	uint32_t shift = topology_shift(vcpus);
	bool amd = false;
	uint32_t max_basic;
	int ret;

	entry = find_entry(table, 0, 0);
	if (!entry)
		return -ENOENT;
	amd = entry->ebx == CPUID_VENDOR_AMD_EBX || entry->ebx == CPUID_VENDOR_HYGON_EBX;
	if (entry->eax < 0xb)
		entry->eax = 0xb;
	max_basic = entry->eax;

	entry = find_entry(table, 1, 0);
	if (!entry)
		return -ENOENT;
	entry->ebx = (entry->ebx & 0xff00) | (apic_id << 24) | ((1u << shift) << 16);
	entry->ecx |= CPUID_1_ECX_HYPERVISOR;
	if (vcpus > 1)
		entry->edx |= CPUID_1_EDX_HTT;
	else
		entry->edx &= ~CPUID_1_EDX_HTT;

	set_cache_sharing(table, 4, vcpus, true);
	ret = set_extended_topology(table, 0xb, apic_id, vcpus);
	if (ret)
		return ret;
	if (max_basic >= 0x1f) {
		ret = set_extended_topology(table, 0x1f, apic_id, vcpus);
		if (ret)
			return ret;
	}
	if (!amd)
		return 0;

	entry = find_entry(table, CPUID_EXT_BASE + 1, 0);
	if (entry) {
		if (vcpus > 1)
			entry->ecx |= CPUID_EXT1_ECX_CMP_LEGACY;
		else
			entry->ecx &= ~CPUID_EXT1_ECX_CMP_LEGACY;
	}
	entry = find_entry(table, CPUID_EXT_BASE + 8, 0);
	if (entry)
		entry->ecx = (shift << 12) | (vcpus - 1);
	entry = find_entry(table, CPUID_EXT_BASE + 0x1e, 0);
	if (entry) {
		entry->eax = apic_id;
		entry->ebx = apic_id & 0xff;
		entry->ecx = 0;
		entry->edx = 0;
	}
	set_cache_sharing(table, CPUID_EXT_BASE + 0x1d, vcpus, false);
	return 0;
}

static int set_kvm_leaves(struct cpuid_table *table)
{
	struct kvm_cpuid_entry2 *entry;

	entry = get_entry(table, CPUID_KVM_SIGNATURE, 0, false);
	if (!entry)
		return -ENOSPC;
	entry->eax = CPUID_KVM_FEATURES;
	memcpy(&entry->ebx, "KVMK", 4);
	memcpy(&entry->ecx, "VMKV", 4);
	memcpy(&entry->edx, "M\0\0\0", 4);

	entry = get_entry(table, CPUID_KVM_FEATURES, 0, false);
	if (!entry)
		return -ENOSPC;
	entry->ebx = 0;
	entry->ecx = 0;
	entry->edx = 0;
	return 0;
}

/*
 * KVM emulates the local APIC's TSC-deadline timer whatever the host CPU, but
 * KVM_GET_SUPPORTED_CPUID does not report it. With the bit, Linux programs
 * timers with one MSR write and skips calibrating the APIC timer against the
 * PIT, which costs 10 jiffies (100 ms at HZ=100) of every boot.
 */
static void set_tsc_deadline(struct smcore_vm *vm, struct cpuid_table *table)
{
	struct kvm_cpuid_entry2 *entry = find_entry(table, 1, 0);

	if (entry && vm->has_irqchip && kvm__has_cap(vm->kvm_fd, KVM_CAP_TSC_DEADLINE_TIMER))
		entry->ecx |= CPUID_1_ECX_TSC_DEADLINE;
}

int cpuid__setup(struct smcore_vcpu *vcpu)
{
	struct smcore_vm *vm = vcpu->vm;
	const struct kvm_cpuid2 *supported = vm->supported_cpuid;
	struct cpuid_table table;
	int ret;

	table.capacity = supported->nent + 16;
	table.cpuid = calloc(1, sizeof(*table.cpuid) + table.capacity * sizeof(supported->entries[0]));
	if (!table.cpuid)
		return vm->host->error(vm->ctx, ENOMEM, "out of memory for the CPUID of vCPU %u",
				       vcpu->index);
	table.cpuid->nent = supported->nent;
	memcpy(table.cpuid->entries, supported->entries, supported->nent * sizeof(supported->entries[0]));

	if (vm->config.cpu_template == SMCORE_CPU_TEMPLATE_BASELINE)
		apply_baseline(&table);
	set_tsc_deadline(vm, &table);
	ret = set_kvm_leaves(&table);
	if (!ret)
		ret = set_topology(&table, vcpu->index, vm->config.vcpus);
	if (ret) {
		ret = vm->host->error(vm->ctx, -ret,
				      "cannot build the CPUID table of vCPU %u: %s",
				      vcpu->index, strerror(-ret));
		goto out;
	}

	if (ioctl(vcpu->fd, KVM_SET_CPUID2, table.cpuid) < 0)
		ret = vm->host->error(vm->ctx, errno, "KVM_SET_CPUID2 on vCPU %u failed: %s",
				      vcpu->index, strerror(errno));
out:
	free(table.cpuid);
	return ret;
}
