/* SPDX-License-Identifier: Apache-2.0 */
/* Loads the hv-kvm plugin and builds ring-3 test guests for the KVM tests and the exit benchmark. */
#ifndef TESTS_KVM_TESTVM_H
#define TESTS_KVM_TESTVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "guest_layout.h"

/* Guest code from guest.S; pass these to testvm__start(). */
extern const uint8_t guest_out_sizes[], guest_in_echo[], guest_mmio[], guest_halt[];
extern const uint8_t guest_fault[], guest_out_loop[], guest_spin[], guest_count[];
extern const uint8_t guest_cpuid[], guest_mmio_script[];

/* The accelerator ops of the loaded plugin, and the host services the tests hand it. */
extern struct smcore_accel_ops testvm_ops;
extern const struct smcore_host testvm_host;

struct testvm {
	struct smcore_vm *vm;
	uint8_t *memory;
	uint32_t vcpus;
	bool empty_idt;          /* load an IDT with limit 0, so any exception triple-faults */
	struct smcore_vcpu *vcpu[GUEST_MAX_VCPUS];
};

/* Registers a test guest starts with besides RIP, RSP and the segment state. */
struct testvm_args {
	uint64_t rbx, rcx, rdi;
};

/* Returns 0 when /dev/kvm opens, else -errno with the reason in `reason`. */
int testvm__check_kvm(char *reason, size_t len);
/* The plugin file: $SMCORE_HV_KVM_PLUGIN if set, else the one in the build tree. */
const char *testvm__plugin_path(void);
/* dlopens the plugin at `path` and copies its accelerator ops; 0 or -1 with the reason in `reason`. */
int testvm__load_plugin(const char *path, char *reason, size_t len);
/* The messages of the last host->error() and host->log() calls, or "" after testvm__clear_error(). */
const char *testvm__last_error(void);
const char *testvm__last_log(void);
void testvm__clear_error(void);

/* Creates a VM with guest RAM, the guest image and `vcpus` vCPUs; 0 or the plugin's -errno. */
int testvm__create(struct testvm *t, uint32_t vcpus, uint32_t cpu_template, uint32_t flags);
/* Loads the registers of vCPU `index` for a CPL 3 entry at `entry` (IOPL 3, interrupts off). */
int testvm__start(struct testvm *t, uint32_t index, const uint8_t *entry, const struct testvm_args *args);
void testvm__destroy(struct testvm *t);

/* Formats an exit for assertion messages. */
const char *testvm__describe_exit(const struct smcore_exit *exit, char *buf, size_t len);

#endif
