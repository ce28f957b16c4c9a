// SPDX-License-Identifier: Apache-2.0
/*
 * Save and restore of vCPU and VM-wide KVM state as a versioned blob.
 *
 * Layout (host byte order): struct blob_header, then `sections` sections, each
 * a struct section_header followed by `size` bytes padded to 8 bytes. The
 * CRC-32 covers everything after the header. Restore checks the whole blob
 * before it changes any KVM state, then applies the sections in the fixed
 * order of the item tables below, whatever their order in the blob.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hv_kvm.h"
#include "msr.h"

#define BLOB_MAGIC "SMKVMST"
#define BLOB_VERSION 1u
#define BLOB_SCOPE_VCPU 1u
#define BLOB_SCOPE_VM 2u
#define BLOB_MAX_MSRS 64u

struct blob_header {
	char magic[8];
	uint32_t version;
	uint32_t scope;
	uint32_t sections;
	uint32_t crc32;
	uint64_t payload_size;
};

struct section_header {
	uint32_t tag;
	uint32_t size;
};

enum item_kind {
	ITEM_VCPU_IOCTL,  /* one struct through a vCPU get/set ioctl pair */
	ITEM_MSRS,
	ITEM_IRQCHIP,     /* struct kvm_irqchip, `chip` selects PIC master, slave or IOAPIC */
	ITEM_VM_IOCTL,    /* one struct through a VM get/set ioctl pair */
	ITEM_CLOCK,
};

struct state_item {
	uint32_t tag;
	const char *name;
	enum item_kind kind;
	unsigned long get;
	unsigned long set;
	const char *get_name;
	const char *set_name;
	uint32_t size;
	uint32_t chip;
	bool (*present)(const struct smcore_vm *vm);
};

static bool always(const struct smcore_vm *vm) { return true; }
static bool with_xsave(const struct smcore_vm *vm) { return vm->xsave_size != 0; }
static bool without_xsave(const struct smcore_vm *vm) { return vm->xsave_size == 0; }
static bool with_xcrs(const struct smcore_vm *vm) { return vm->has_xcrs; }
static bool with_irqchip(const struct smcore_vm *vm) { return vm->has_irqchip; }
static bool with_debugregs(const struct smcore_vm *vm) { return vm->has_debugregs; }

#define IOCTLS(get_ioctl, set_ioctl) get_ioctl, set_ioctl, #get_ioctl, #set_ioctl

/*
 * Restore order: sregs before the LAPIC (APIC base), the LAPIC before MSRs (TSC deadline).
 * TODO: guests allowed more than 4096 bytes of XSAVE state (AMX) need KVM_GET_XSAVE2.
 */
static const struct state_item vcpu_items[] = {
	{ 1, "sregs", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_SREGS, KVM_SET_SREGS), sizeof(struct kvm_sregs), 0, always },
	{ 2, "regs", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_REGS, KVM_SET_REGS), sizeof(struct kvm_regs), 0, always },
	{ 3, "xsave", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_XSAVE, KVM_SET_XSAVE), sizeof(struct kvm_xsave), 0, with_xsave },
	{ 4, "fpu", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_FPU, KVM_SET_FPU), sizeof(struct kvm_fpu), 0, without_xsave },
	{ 5, "xcrs", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_XCRS, KVM_SET_XCRS), sizeof(struct kvm_xcrs), 0, with_xcrs },
	{ 6, "lapic", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_LAPIC, KVM_SET_LAPIC), sizeof(struct kvm_lapic_state), 0, with_irqchip },
	{ 7, "msrs", ITEM_MSRS, IOCTLS(KVM_GET_MSRS, KVM_SET_MSRS), 0, 0, always },
	{ 8, "vcpu events", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS), sizeof(struct kvm_vcpu_events), 0, always },
	{ 9, "mp_state", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_MP_STATE, KVM_SET_MP_STATE), sizeof(struct kvm_mp_state), 0, always },
	{ 10, "debugregs", ITEM_VCPU_IOCTL, IOCTLS(KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS), sizeof(struct kvm_debugregs), 0, with_debugregs },
};

static const struct state_item vm_items[] = {
	{ 32, "PIC master", ITEM_IRQCHIP, IOCTLS(KVM_GET_IRQCHIP, KVM_SET_IRQCHIP), sizeof(struct kvm_irqchip), KVM_IRQCHIP_PIC_MASTER, with_irqchip },
	{ 33, "PIC slave", ITEM_IRQCHIP, IOCTLS(KVM_GET_IRQCHIP, KVM_SET_IRQCHIP), sizeof(struct kvm_irqchip), KVM_IRQCHIP_PIC_SLAVE, with_irqchip },
	{ 34, "IOAPIC", ITEM_IRQCHIP, IOCTLS(KVM_GET_IRQCHIP, KVM_SET_IRQCHIP), sizeof(struct kvm_irqchip), KVM_IRQCHIP_IOAPIC, with_irqchip },
	{ 35, "PIT", ITEM_VM_IOCTL, IOCTLS(KVM_GET_PIT2, KVM_SET_PIT2), sizeof(struct kvm_pit_state2), 0, with_irqchip },
	{ 36, "clock", ITEM_CLOCK, IOCTLS(KVM_GET_CLOCK, KVM_SET_CLOCK), sizeof(struct kvm_clock_data), 0, always },
};

#define ITEM_COUNT(items) (sizeof(items) / sizeof((items)[0]))
#define MAX_ITEMS 16

/* MSRs saved when KVM lists them; the TSC is first so a later TSC deadline is relative to it. */
static const uint32_t saved_msrs[] = {
	MSR_IA32_TSC, MSR_IA32_TSC_ADJUST, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP,
	MSR_IA32_SYSENTER_EIP, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK,
	MSR_KERNEL_GS_BASE, MSR_TSC_AUX, MSR_IA32_MISC_ENABLE, MSR_IA32_CR_PAT,
	MSR_MTRR_DEF_TYPE, MSR_IA32_TSC_DEADLINE, MSR_KVM_WALL_CLOCK_NEW,
	MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_ASYNC_PF_EN, MSR_KVM_STEAL_TIME, MSR_KVM_PV_EOI_EN,
};

/* MSRs KVM always emulates but may leave out of KVM_GET_MSR_INDEX_LIST. */
static const uint32_t always_saved_msrs[] = {
	MSR_IA32_TSC, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_IA32_MISC_ENABLE, MSR_IA32_CR_PAT, MSR_MTRR_DEF_TYPE,
};

struct blob_writer {
	uint8_t *data;
	size_t size;
	size_t capacity;
	uint32_t sections;
};

struct blob_section {
	const struct section_header *header;
	const void *payload;
};

static uint32_t crc32(const uint8_t *data, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= data[i];
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

static size_t pad8(size_t size)
{
	return (size + 7) & ~(size_t)7;
}

static void *writer_reserve(struct blob_writer *writer, uint32_t tag, uint32_t size)
{
	size_t needed = writer->size + sizeof(struct section_header) + pad8(size);
	struct section_header *header;

	if (needed > writer->capacity) {
		size_t capacity = writer->capacity ? writer->capacity : 8192;
		uint8_t *data;

		while (capacity < needed)
			capacity *= 2;
		data = realloc(writer->data, capacity);
		if (!data)
			return NULL;
		writer->data = data;
		writer->capacity = capacity;
	}

	header = (struct section_header *)(writer->data + writer->size);
	header->tag = tag;
	header->size = size;
	memset(header + 1, 0, pad8(size));
	writer->size = needed;
	writer->sections++;
	return header + 1;
}

static bool msr_is_saved(const struct smcore_vm *vm, uint32_t index)
{
	if (index == MSR_IA32_TSC_DEADLINE && !vm->has_irqchip)
		return false;
	for (size_t i = 0; i < sizeof(always_saved_msrs) / sizeof(always_saved_msrs[0]); i++) {
		if (always_saved_msrs[i] == index)
			return true;
	}
	return msr__is_supported(vm, index);
}

static int save_msrs(struct smcore_vcpu *vcpu, struct blob_writer *writer, const struct state_item *item)
{
	struct smcore_vm *vm = vcpu->vm;
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[BLOB_MAX_MSRS];
	} buf;
	void *payload;
	int ret;

	memset(&buf, 0, sizeof(buf));
	for (size_t i = 0; i < sizeof(saved_msrs) / sizeof(saved_msrs[0]); i++) {
		if (msr_is_saved(vm, saved_msrs[i]))
			buf.entries[buf.header.nmsrs++].index = saved_msrs[i];
	}
	/* KVM emulates 8 variable-range and all 11 fixed-range MTRRs. */
	for (uint32_t index = MSR_MTRR_PHYS_BASE0; index <= MSR_MTRR_PHYS_MASK7; index++)
		buf.entries[buf.header.nmsrs++].index = index;
	buf.entries[buf.header.nmsrs++].index = MSR_MTRR_FIX64K_00000;
	buf.entries[buf.header.nmsrs++].index = MSR_MTRR_FIX16K_80000;
	buf.entries[buf.header.nmsrs++].index = MSR_MTRR_FIX16K_A0000;
	for (uint32_t index = MSR_MTRR_FIX4K_C0000; index <= MSR_MTRR_FIX4K_F8000; index++)
		buf.entries[buf.header.nmsrs++].index = index;

	ret = ioctl(vcpu->fd, KVM_GET_MSRS, &buf.header);
	if (ret < 0)
		return vm->host->error(vm->ctx, errno, "KVM_GET_MSRS on vCPU %u failed: %s",
				       vcpu->index, strerror(errno));
	if ((uint32_t)ret != buf.header.nmsrs)
		return vm->host->error(vm->ctx, EIO, "KVM_GET_MSRS on vCPU %u could not read MSR 0x%x",
				       vcpu->index, buf.entries[ret].index);

	payload = writer_reserve(writer, item->tag, buf.header.nmsrs * sizeof(buf.entries[0]));
	if (!payload)
		return -ENOMEM;
	memcpy(payload, buf.entries, buf.header.nmsrs * sizeof(buf.entries[0]));
	return 0;
}

static int save_item(struct smcore_vm *vm, struct smcore_vcpu *vcpu, struct blob_writer *writer,
		     const struct state_item *item)
{
	int fd = vcpu ? vcpu->fd : vm->vm_fd;
	void *payload;

	if (item->kind == ITEM_MSRS)
		return save_msrs(vcpu, writer, item);

	payload = writer_reserve(writer, item->tag, item->size);
	if (!payload)
		return -ENOMEM;
	if (item->kind == ITEM_IRQCHIP)
		((struct kvm_irqchip *)payload)->chip_id = item->chip;
	if (ioctl(fd, item->get, payload) < 0) {
		if (vcpu)
			return vm->host->error(vm->ctx, errno, "%s on vCPU %u failed: %s",
					       item->get_name, vcpu->index, strerror(errno));
		return vm->host->error(vm->ctx, errno, "%s for the %s failed: %s",
				       item->get_name, item->name, strerror(errno));
	}
	return 0;
}

int state__save(struct smcore_vm *vm, struct smcore_vcpu *vcpu, void **blob, size_t *blob_size)
{
	const struct state_item *items = vcpu ? vcpu_items : vm_items;
	size_t count = vcpu ? ITEM_COUNT(vcpu_items) : ITEM_COUNT(vm_items);
	struct blob_writer writer = { 0 };
	struct blob_header *header;
	int ret;

	if (vcpu) {
		ret = vcpu__complete_pending_exit(vcpu);
		if (ret)
			return ret;
	}

	writer.capacity = 8192;
	writer.data = calloc(1, writer.capacity);
	if (!writer.data)
		return vm->host->error(vm->ctx, ENOMEM, "out of memory for a state blob");
	writer.size = sizeof(struct blob_header);

	for (size_t i = 0; i < count; i++) {
		if (!items[i].present(vm))
			continue;
		ret = save_item(vm, vcpu, &writer, &items[i]);
		if (ret == -ENOMEM)
			ret = vm->host->error(vm->ctx, ENOMEM, "out of memory for a state blob");
		if (ret)
			goto err_free;
	}

	header = (struct blob_header *)writer.data;
	memcpy(header->magic, BLOB_MAGIC, sizeof(header->magic));
	header->version = BLOB_VERSION;
	header->scope = vcpu ? BLOB_SCOPE_VCPU : BLOB_SCOPE_VM;
	header->sections = writer.sections;
	header->payload_size = writer.size - sizeof(*header);
	header->crc32 = crc32(writer.data + sizeof(*header), header->payload_size);

	*blob = writer.data;
	*blob_size = writer.size;
	return 0;

err_free:
	free(writer.data);
	return ret;
}

struct restore_ctx {
	struct smcore_vm *vm;
	struct smcore_vcpu *vcpu;
	const char *what;         /* "vCPU 3 state" or "VM state", for messages */
	char what_buf[32];
	const struct state_item *items;
	size_t count;
	struct blob_section found[MAX_ITEMS];
};

static int reject(struct restore_ctx *rc, const char *reason, const char *detail)
{
	return rc->vm->host->error(rc->vm->ctx, EINVAL, "rejected the %s blob: %s%s",
				   rc->what, reason, detail);
}

static int check_header(struct restore_ctx *rc, const uint8_t *blob, size_t blob_size)
{
	struct blob_header header;
	uint32_t scope = rc->vcpu ? BLOB_SCOPE_VCPU : BLOB_SCOPE_VM;
	uint32_t crc;

	if (blob_size < sizeof(header))
		return reject(rc, "truncated header", "");
	memcpy(&header, blob, sizeof(header));
	if (memcmp(header.magic, BLOB_MAGIC, sizeof(header.magic)) != 0)
		return reject(rc, "bad magic, not an hv-kvm state blob", "");
	if (header.version != BLOB_VERSION)
		return rc->vm->host->error(rc->vm->ctx, EINVAL,
					   "rejected the %s blob: format version %u, this plugin reads %u",
					   rc->what, header.version, BLOB_VERSION);
	if (header.scope != scope)
		return reject(rc, header.scope == BLOB_SCOPE_VM ? "it holds VM-wide state" :
				  "it holds the state of a vCPU", "");
	if (header.payload_size != blob_size - sizeof(header))
		return rc->vm->host->error(rc->vm->ctx, EINVAL,
					   "rejected the %s blob: %zu bytes, the header announces %llu",
					   rc->what, blob_size,
					   (unsigned long long)(header.payload_size + sizeof(header)));
	if (header.sections > MAX_ITEMS)
		return reject(rc, "more sections than this format defines", "");
	crc = crc32(blob + sizeof(header), header.payload_size);
	if (crc != header.crc32)
		return rc->vm->host->error(rc->vm->ctx, EINVAL,
					   "rejected the %s blob: CRC-32 mismatch (stored 0x%08x, computed 0x%08x)",
					   rc->what, header.crc32, crc);
	return (int)header.sections;
}

static int check_section(struct restore_ctx *rc, const struct section_header *section, size_t index)
{
	const struct state_item *item = &rc->items[index];

	if (!item->present(rc->vm))
		return reject(rc, "this VM cannot load the section ", item->name);
	if (rc->found[index].header)
		return reject(rc, "duplicate section ", item->name);
	if (item->kind == ITEM_MSRS) {
		if (section->size % sizeof(struct kvm_msr_entry) != 0 ||
		    section->size / sizeof(struct kvm_msr_entry) > BLOB_MAX_MSRS)
			return reject(rc, "invalid size of section ", item->name);
	} else if (section->size != item->size) {
		return reject(rc, "invalid size of section ", item->name);
	}
	return 0;
}

static int parse_sections(struct restore_ctx *rc, const uint8_t *blob, size_t blob_size, int sections)
{
	size_t offset = sizeof(struct blob_header);

	for (int n = 0; n < sections; n++) {
		struct section_header section;
		size_t index;
		int ret;

		if (blob_size - offset < sizeof(section))
			return reject(rc, "truncated section header", "");
		memcpy(&section, blob + offset, sizeof(section));
		offset += sizeof(section);
		if (blob_size - offset < pad8(section.size))
			return reject(rc, "truncated section", "");

		for (index = 0; index < rc->count; index++) {
			if (rc->items[index].tag == section.tag)
				break;
		}
		if (index == rc->count)
			return rc->vm->host->error(rc->vm->ctx, EINVAL,
						   "rejected the %s blob: unknown section tag %u",
						   rc->what, section.tag);
		ret = check_section(rc, &section, index);
		if (ret)
			return ret;
		rc->found[index].header = (const struct section_header *)(blob + offset - sizeof(section));
		rc->found[index].payload = blob + offset;
		offset += pad8(section.size);
	}
	if (offset != blob_size)
		return reject(rc, "trailing bytes after the last section", "");

	for (size_t i = 0; i < rc->count; i++) {
		if (rc->items[i].present(rc->vm) && !rc->found[i].header)
			return reject(rc, "missing section ", rc->items[i].name);
	}
	return 0;
}

static int restore_msrs(struct restore_ctx *rc, const struct blob_section *section)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entries[BLOB_MAX_MSRS];
	} buf;
	int ret;

	memset(&buf.header, 0, sizeof(buf.header));
	buf.header.nmsrs = section->header->size / sizeof(struct kvm_msr_entry);
	memcpy(buf.entries, section->payload, section->header->size);
	ret = ioctl(rc->vcpu->fd, KVM_SET_MSRS, &buf.header);
	if (ret < 0)
		return rc->vm->host->error(rc->vm->ctx, errno, "KVM_SET_MSRS on vCPU %u failed: %s",
					   rc->vcpu->index, strerror(errno));
	if ((uint32_t)ret != buf.header.nmsrs)
		return rc->vm->host->error(rc->vm->ctx, EINVAL, "KVM_SET_MSRS on vCPU %u rejected MSR 0x%x",
					   rc->vcpu->index, buf.entries[ret].index);
	return 0;
}

static int restore_item(struct restore_ctx *rc, size_t index)
{
	const struct state_item *item = &rc->items[index];
	const struct blob_section *section = &rc->found[index];
	int fd = rc->vcpu ? rc->vcpu->fd : rc->vm->vm_fd;
	void *buf;
	int ret;

	if (item->kind == ITEM_MSRS)
		return restore_msrs(rc, section);

	/* A copy, because the blob may be unaligned or read-only and KVM_SET_CLOCK needs its flags cleared. */
	buf = malloc(item->size);
	if (!buf)
		return rc->vm->host->error(rc->vm->ctx, ENOMEM, "out of memory restoring the %s", item->name);
	memcpy(buf, section->payload, item->size);
	if (item->kind == ITEM_IRQCHIP && ((struct kvm_irqchip *)buf)->chip_id != item->chip) {
		free(buf);
		return reject(rc, "wrong chip id in section ", item->name);
	}
	if (item->kind == ITEM_CLOCK)
		((struct kvm_clock_data *)buf)->flags = 0;

	ret = ioctl(fd, item->set, buf);
	free(buf);
	if (ret < 0) {
		if (rc->vcpu)
			return rc->vm->host->error(rc->vm->ctx, errno, "%s on vCPU %u failed: %s",
						   item->set_name, rc->vcpu->index, strerror(errno));
		return rc->vm->host->error(rc->vm->ctx, errno, "%s for the %s failed: %s",
					   item->set_name, item->name, strerror(errno));
	}
	return 0;
}

int state__restore(struct smcore_vm *vm, struct smcore_vcpu *vcpu, const void *blob, size_t blob_size)
{
	struct restore_ctx rc;
	int sections;
	int ret;

	memset(&rc, 0, sizeof(rc));
	rc.vm = vm;
	rc.vcpu = vcpu;
	rc.items = vcpu ? vcpu_items : vm_items;
	rc.count = vcpu ? ITEM_COUNT(vcpu_items) : ITEM_COUNT(vm_items);
	if (vcpu) {
		snprintf(rc.what_buf, sizeof(rc.what_buf), "vCPU %u state", vcpu->index);
		rc.what = rc.what_buf;
	} else {
		rc.what = "VM state";
	}
	if (!blob)
		return reject(&rc, "no data", "");

	sections = check_header(&rc, blob, blob_size);
	if (sections < 0)
		return sections;
	ret = parse_sections(&rc, blob, blob_size, sections);
	if (ret)
		return ret;

	for (size_t i = 0; i < rc.count; i++) {
		if (!rc.found[i].header)
			continue;
		ret = restore_item(&rc, i);
		if (ret)
			return ret;
	}
	if (vcpu)
		vcpu->exit_pending = false;
	return 0;
}
