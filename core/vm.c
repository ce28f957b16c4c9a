/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "log.h"

#define STATUS_PREFIX "smcore-exit: "

static void write_console(void *opaque, const uint8_t *data, size_t len)
{
	struct sm_vm *vm = opaque;

	/*
	 * The init drains the console before it reports the exit status, so what
	 * follows is only the kernel's own shutdown message.
	 */
	if (__atomic_load_n(&vm->guest_status, __ATOMIC_ACQUIRE) != VM_GUEST_STATUS_NONE)
		return;

	while (len > 0) {
		ssize_t written = write(vm->console_fd, data, len);

		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return; /* a closed console must not stop the guest */
		data += written;
		len -= (size_t)written;
	}
}

/* Parse one line of the status channel: "smcore-exit: exit N" or "smcore-exit: signal N". */
static void parse_status_line(struct sm_vm *vm, const char *line)
{
	enum vm_guest_status kind;
	const char *number;
	char *end;
	long value;

	if (strncmp(line, STATUS_PREFIX, strlen(STATUS_PREFIX)) != 0)
		goto invalid;
	line += strlen(STATUS_PREFIX);
	if (strncmp(line, "exit ", 5) == 0) {
		kind = VM_GUEST_STATUS_EXIT;
		number = line + 5;
	} else if (strncmp(line, "signal ", 7) == 0) {
		kind = VM_GUEST_STATUS_SIGNAL;
		number = line + 7;
	} else {
		goto invalid;
	}
	errno = 0;
	value = strtol(number, &end, 10);
	if (errno || end == number || *end || value < 0 || value > 255)
		goto invalid;

	pthread_mutex_lock(&vm->lock);
	vm->guest_status_value = (int)value;
	__atomic_store_n(&vm->guest_status, kind, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->lock);
	log_info("status", "guest reported %s %ld", kind == VM_GUEST_STATUS_EXIT ? "exit" : "signal", value);
	return;
invalid:
	log_warning("status", "ignoring invalid status line from the guest: '%.60s'", line);
}

/* The guest writes the status line on COM2, one byte per call; the UART lock serialises calls. */
static void collect_status(void *opaque, const uint8_t *data, size_t len)
{
	struct sm_vm *vm = opaque;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			vm->status_line[vm->status_line_len] = '\0';
			parse_status_line(vm, vm->status_line);
			vm->status_line_len = 0;
		} else if (data[i] != '\r' && vm->status_line_len < sizeof(vm->status_line) - 1) {
			vm->status_line[vm->status_line_len++] = (char)data[i];
		}
	}
}

static void set_irq(void *opaque, uint32_t irq, int level)
{
	struct sm_vm *vm = opaque;
	int ret = vm->accel->irq_line(vm->handle, irq, level);

	if (ret)
		log_error("vm", "cannot set IRQ %u to %d: %s", irq, level, strerror(-ret));
}

static void i8042_reset(void *opaque)
{
	vm__request_stop(opaque, VM_STOP_RESET, "the guest reset the machine through the i8042");
}

/* Make every running vCPU return to its loop, which then checks the stop reason. */
static void kick_vcpus(struct sm_vm *vm)
{
	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		if (vm->vcpus[i].handle && vm->vcpus[i].thread_started)
			vm->accel->kick_vcpu(vm->vcpus[i].handle);
	}
}

void vm__request_stop(struct sm_vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
{
	va_list args;

	pthread_mutex_lock(&vm->lock);
	if (vm->stop_reason == VM_RUNNING) {
		va_start(args, fmt);
		vsnprintf(vm->stop_message, sizeof(vm->stop_message), fmt, args);
		va_end(args);
		__atomic_store_n(&vm->stop_reason, reason, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&vm->stopped);
	}
	pthread_mutex_unlock(&vm->lock);
	kick_vcpus(vm);
}

static int register_devices(struct sm_vm *vm, struct sm_error *err)
{
	int ret;

	io_bus__init(&vm->pio, "pio");
	io_bus__init(&vm->mmio, "mmio");
	serial__init(&vm->console, "com1", SERIAL_COM1_IRQ, write_console, vm, set_irq, vm);
	serial__init(&vm->status, "com2", SERIAL_COM2_IRQ, collect_status, vm, set_irq, vm);
	rtc__init(&vm->rtc);
	vm->i8042 = (struct i8042){ .reset = i8042_reset, .opaque = vm };

	ret = io_bus__register(&vm->pio, SERIAL_COM1_PORT, SERIAL_PORT_COUNT, "com1", &serial_io_ops, &vm->console);
	if (!ret)
		ret = io_bus__register(&vm->pio, SERIAL_COM2_PORT, SERIAL_PORT_COUNT, "com2", &serial_io_ops, &vm->status);
	if (!ret)
		ret = io_bus__register(&vm->pio, I8042_DATA_PORT, I8042_COMMAND_PORT - I8042_DATA_PORT + 1,
				       "i8042", &i8042_io_ops, &vm->i8042);
	if (!ret)
		ret = io_bus__register(&vm->pio, RTC_PORT, 2, "rtc", &rtc_io_ops, &vm->rtc);
	if (ret)
		return sm_error__set(err, -ret, "vm: cannot register the legacy devices: %s", strerror(-ret));
	return 0;
}

static int create_vcpus(struct sm_vm *vm, struct sm_error *err)
{
	int ret;

	vm->vcpus = calloc(vm->vcpu_count, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return sm_error__set(err, ENOMEM, "vm: out of memory");
	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].index = i;
		ret = vm->accel->create_vcpu(vm->handle, i, &vm->vcpus[i].handle);
		if (ret) {
			vm->vcpus[i].handle = NULL;
			return sm_error__set(err, -ret, "%s: cannot create vCPU %u: %s",
					     vm->accel_plugin->desc.name, i,
					     vm->accel_err.code ? vm->accel_err.message : strerror(-ret));
		}
	}
	return 0;
}

int vm__create(struct sm_vm *vm, const struct vm_options *options, struct sm_error *err)
{
	struct smcore_vm_config config = {
		.size = sizeof(config),
		.vcpus = options->vcpus,
		.memory_bytes = options->memory_bytes,
		.cpu_template = options->cpu_template,
	};
	int ret;

	memset(vm, 0, sizeof(*vm));
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->stopped, NULL);
	vm->accel_plugin = options->accel_plugin;
	vm->accel = &options->accel_plugin->ops.accel;
	vm->accel_ctx = (struct smcore_ctx){ .vm = vm, .name = options->accel_plugin->desc.name, .err = &vm->accel_err };
	vm->vcpu_count = options->vcpus;
	vm->console_fd = options->console_fd;

	ret = guest_memory__init(&vm->mem, options->memory_bytes);
	if (ret) {
		ret = sm_error__set(err, -ret, "vm: cannot allocate %llu bytes of guest memory: %s",
				    (unsigned long long)options->memory_bytes, strerror(-ret));
		goto fail;
	}
	ret = vm->accel->create(&vm_host_services, &vm->accel_ctx, &config, &vm->handle);
	if (ret) {
		vm->handle = NULL;
		ret = sm_error__set(err, -ret, "%s: cannot create the VM: %s", vm->accel_ctx.name,
				    vm->accel_err.code ? vm->accel_err.message : strerror(-ret));
		goto fail;
	}
	for (unsigned i = 0; i < vm->mem.region_count; i++) {
		const struct guest_memory_region *region = &vm->mem.regions[i];

		ret = vm->accel->map_memory(vm->handle, i, region->gpa, region->size, region->hva);
		if (ret) {
			ret = sm_error__set(err, -ret, "%s: cannot map guest memory at 0x%llx: %s",
					    vm->accel_ctx.name, (unsigned long long)region->gpa,
					    vm->accel_err.code ? vm->accel_err.message : strerror(-ret));
			goto fail;
		}
	}
	ret = create_vcpus(vm, err);
	if (!ret)
		ret = register_devices(vm, err);
	if (ret)
		goto fail;
	ret = event_loop__start(&vm->events);
	if (ret) {
		ret = sm_error__set(err, -ret, "vm: cannot start the event loop: %s", strerror(-ret));
		goto fail;
	}
	return 0;

fail:
	vm__destroy(vm);
	return ret;
}

int vm__start(struct sm_vm *vm, const struct smcore_x86_regs *regs, struct sm_error *err)
{
	int ret;

	ret = vm->accel->set_regs(vm->vcpus[0].handle, regs);
	if (ret)
		return sm_error__set(err, -ret, "%s: cannot load the boot vCPU's registers: %s",
				     vm->accel_ctx.name, vm->accel_err.code ? vm->accel_err.message : strerror(-ret));

	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		ret = pthread_create(&vm->vcpus[i].thread, NULL, vm__vcpu_thread, &vm->vcpus[i]);
		if (ret) {
			vm__request_stop(vm, VM_STOP_ERROR, "cannot start the thread of vCPU %u", i);
			return sm_error__set(err, ret, "vm: cannot start the thread of vCPU %u: %s", i, strerror(ret));
		}
		vm->vcpus[i].thread_started = 1;
	}
	return 0;
}

static void join_vcpus(struct sm_vm *vm)
{
	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = 0;
		}
	}
}

/* Wait on the stop condition until `deadline`; returns 1 if it passed. Called with the lock held. */
static int wait_until(struct sm_vm *vm, const struct timespec *deadline)
{
	return pthread_cond_timedwait(&vm->stopped, &vm->lock, deadline) == ETIMEDOUT;
}

static struct timespec after_ms(uint64_t ms)
{
	struct timespec when;

	clock_gettime(CLOCK_REALTIME, &when);
	when.tv_sec += (time_t)(ms / 1000);
	when.tv_nsec += (long)(ms % 1000) * 1000000;
	if (when.tv_nsec >= 1000000000) {
		when.tv_sec++;
		when.tv_nsec -= 1000000000;
	}
	return when;
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

enum vm_stop_reason vm__wait(struct sm_vm *vm, uint64_t timeout_ms)
{
	struct timespec deadline = after_ms(timeout_ms), tick;
	int timed_out = 0;

	pthread_mutex_lock(&vm->lock);
	while (vm->stop_reason == VM_RUNNING && !timed_out) {
		/* Wake once a second to ask the vCPUs whether the guest halted for good. */
		tick = after_ms(1000);
		if (timeout_ms && before(&deadline, &tick)) {
			timed_out = wait_until(vm, &deadline);
			continue;
		}
		if (wait_until(vm, &tick) && vm->accel->vcpu_stopped) {
			__atomic_add_fetch(&vm->halt_round, 1, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&vm->lock);
			kick_vcpus(vm);
			pthread_mutex_lock(&vm->lock);
		}
	}
	pthread_mutex_unlock(&vm->lock);

	if (timed_out)
		vm__request_stop(vm, VM_STOP_TIMEOUT, "the run timed out after %llu ms",
				 (unsigned long long)timeout_ms);
	else
		kick_vcpus(vm);
	join_vcpus(vm);
	return vm->stop_reason;
}

void vm__destroy(struct sm_vm *vm)
{
	if (vm->vcpus) {
		vm__request_stop(vm, VM_STOP_ERROR, "the VM was destroyed");
		join_vcpus(vm);
		for (uint32_t i = 0; i < vm->vcpu_count; i++) {
			if (vm->vcpus[i].handle)
				vm->accel->destroy_vcpu(vm->vcpus[i].handle);
		}
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	event_loop__stop(&vm->events);
	/* Device threads may still raise interrupts, so they stop before the accelerator goes. */
	for (size_t i = 0; i < vm->device_count; i++)
		device__destroy(vm->devices[i]);
	free(vm->devices);
	vm->devices = NULL;
	vm->device_count = 0;
	if (vm->handle)
		vm->accel->destroy(vm->handle);
	vm->handle = NULL;
	if (vm->pio.name) {
		io_bus__destroy(&vm->pio);
		io_bus__destroy(&vm->mmio);
		serial__destroy(&vm->console);
		serial__destroy(&vm->status);
		rtc__destroy(&vm->rtc);
		vm->pio.name = NULL;
	}
	guest_memory__destroy(&vm->mem);
	pthread_cond_destroy(&vm->stopped);
	pthread_mutex_destroy(&vm->lock);
}
