/* SPDX-License-Identifier: Apache-2.0 */
/* A virtual machine: guest memory, the accelerator, vCPU threads and legacy devices. */
#ifndef SMCORE_VM_H
#define SMCORE_VM_H

#include <pthread.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "error.h"
#include "event_loop.h"
#include "guest_memory.h"
#include "i8042.h"
#include "io_bus.h"
#include "plugin_loader.h"
#include "rtc.h"
#include "serial.h"

/* Reasons a run ends. */
enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_RESET,          /* i8042 reset or the accelerator's reset event */
	VM_STOP_POWEROFF,       /* the accelerator's power-off event, or every vCPU halted for good */
	VM_STOP_TRIPLE_FAULT,
	VM_STOP_ERROR,          /* a vCPU failed; stop_message contains the reason */
	VM_STOP_TIMEOUT,
	VM_STOP_SIGNAL,         /* the user interrupted smcore */
};

/* Result the guest init reported on the status channel. */
enum vm_guest_status {
	VM_GUEST_STATUS_NONE = 0,
	VM_GUEST_STATUS_EXIT,
	VM_GUEST_STATUS_SIGNAL,
};

struct sm_vm;
struct sm_device;
struct config_section;

/* Host-services context handed to one plugin instance. */
struct smcore_ctx {
	struct sm_vm *vm;
	const char *name;                      /* plugin or device name, the prefix of its log lines */
	struct sm_error *err;                  /* where host->error() records the reason */
	const struct config_section *section;  /* the plugin's config section, or NULL */
	const char *config_path;               /* for FILE:LINE messages */
	const char *config_dir;                /* base of relative paths in the section */
	struct sm_device *device;              /* the device instance, for device plugins */
};

struct sm_vcpu {
	struct sm_vm *vm;
	uint32_t index;
	struct smcore_vcpu *handle;
	pthread_t thread;
	int thread_started;
	uint64_t exits;
	uint64_t stopped_round;    /* the last halt-check round in which this vCPU could not run */
};

struct sm_vm {
	struct sm_plugin *accel_plugin;
	const struct smcore_accel_ops *accel;
	struct smcore_ctx accel_ctx;
	struct sm_error accel_err;
	struct smcore_vm *handle;
	struct guest_memory mem;
	uint32_t vcpu_count;
	struct sm_vcpu *vcpus;

	struct io_bus pio;
	struct io_bus mmio;
	struct serial console;     /* COM1: the guest console */
	struct serial status;      /* COM2: the init's status channel */
	struct i8042 i8042;
	struct rtc rtc;
	struct event_loop events;
	int console_fd;
	struct sm_device **devices; /* device plugins, in config order */
	size_t device_count;

	pthread_mutex_t lock;
	pthread_cond_t stopped;
	enum vm_stop_reason stop_reason;
	char stop_message[256];
	char status_line[64];
	size_t status_line_len;
	enum vm_guest_status guest_status;
	int guest_status_value;
	uint64_t halt_round;       /* incremented by vm__wait() once a second, then every vCPU is kicked */
};

struct vm_options {
	struct sm_plugin *accel_plugin;   /* the VM borrows it; the caller closes it after destroy */
	uint64_t memory_bytes;
	uint32_t vcpus;
	uint32_t cpu_template;
	int console_fd;                   /* where COM1 output goes */
};

/* Create the VM, its memory, vCPUs and legacy devices; 0 or -errno with a message. */
int vm__create(struct sm_vm *vm, const struct vm_options *options, struct sm_error *err);
void vm__destroy(struct sm_vm *vm);
/* Start one thread per vCPU, with `regs` loaded into the boot vCPU; 0 or -errno. */
int vm__start(struct sm_vm *vm, const struct smcore_x86_regs *regs, struct sm_error *err);
/*
 * Wait until the guest stops or `timeout_ms` passes (0 waits forever), then
 * stop and join every vCPU; returns the stop reason.
 * A guest kernel that halts instead of resetting (a power-off without ACPI)
 * stays inside KVM_RUN. So once a second every vCPU is kicked to check
 * whether all of them halted for good, which ends the run too.
 */
enum vm_stop_reason vm__wait(struct sm_vm *vm, uint64_t timeout_ms);
/* Ask the VM to stop for `reason`; the first reason wins. Safe from any thread. */
void vm__request_stop(struct sm_vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Host services table for plugins. */
extern const struct smcore_host vm_host_services;

/* The vCPU thread body (run_loop.c). */
void *vm__vcpu_thread(void *opaque);
/* From a kicked vCPU's thread: record whether it can run again, and stop the VM when none can. */
void vm__check_halted(struct sm_vcpu *vcpu);

#endif
