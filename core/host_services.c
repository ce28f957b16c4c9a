/* SPDX-License-Identifier: Apache-2.0 */
/* The services table every plugin receives: logging, errors, guest memory, IRQs, events, config. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "device.h"
#include "log.h"
#include "vm.h"

static void host_log(struct smcore_ctx *ctx, enum smcore_log_level level, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	log__vwrite(level, ctx->name, fmt, args);
	va_end(args);
}

static int host_error(struct smcore_ctx *ctx, int err, const char *fmt, ...)
{
	va_list args;
	int code = err < 0 ? -err : err;

	if (code == 0)
		code = EIO;
	if (!ctx->err)
		return -code;
	ctx->err->code = code;
	va_start(args, fmt);
	vsnprintf(ctx->err->message, sizeof(ctx->err->message), fmt, args);
	va_end(args);
	return -code;
}

static int host_gpa_read(struct smcore_ctx *ctx, uint64_t gpa, void *buf, size_t len)
{
	return guest_memory__read(&ctx->vm->mem, gpa, buf, len);
}

static int host_gpa_write(struct smcore_ctx *ctx, uint64_t gpa, const void *buf, size_t len)
{
	return guest_memory__write(&ctx->vm->mem, gpa, buf, len);
}

static void *host_gpa_to_hva(struct smcore_ctx *ctx, uint64_t gpa, uint64_t len)
{
	return guest_memory__hva(&ctx->vm->mem, gpa, len);
}

static int host_irq_set(struct smcore_ctx *ctx, uint32_t line, int level)
{
	struct sm_vm *vm = ctx->vm;

	return vm->accel->irq_line(vm->handle, line, level ? 1 : 0);
}

static int host_fd_watch(struct smcore_ctx *ctx, int fd, uint32_t events,
			 smcore_fd_callback cb, void *opaque)
{
	return event_loop__watch(&ctx->vm->events, fd, events, cb, opaque);
}

static int host_fd_unwatch(struct smcore_ctx *ctx, int fd)
{
	return event_loop__unwatch(&ctx->vm->events, fd);
}

static int host_timer_add(struct smcore_ctx *ctx, uint64_t ns, smcore_timer_callback cb, void *opaque)
{
	return event_loop__timer(&ctx->vm->events, ns, cb, opaque);
}

static const char *host_config_get(struct smcore_ctx *ctx, const char *key)
{
	const struct config_value *value = config__section_value(ctx->section, key);

	return value ? value->value : NULL;
}

static int host_config_error(struct smcore_ctx *ctx, const char *key, const char *fmt, ...)
{
	const struct config_value *value = config__section_value(ctx->section, key);
	char message[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(message, sizeof(message), fmt, args);
	va_end(args);
	if (value && value->line > 0)
		return host_error(ctx, EINVAL, "%s:%d: device.%s.%s: %s", ctx->config_path, value->line,
				  ctx->section->name, key, message);
	/* A value from --set is reported as the --set argument, as the config's own keys are. */
	if (value && value->line == 0)
		return host_error(ctx, EINVAL, "--set device.%s.%s=%s: device.%s.%s: %s", ctx->section->name, key,
				  value->value, ctx->section->name, key, message);
	/* A missing key is reported at its section's header. */
	if (!value && ctx->section && ctx->section->line > 0)
		return host_error(ctx, EINVAL, "%s:%d: device.%s.%s: %s", ctx->config_path, ctx->section->line,
				  ctx->section->name, key, message);
	return host_error(ctx, EINVAL, "%s: device.%s.%s: %s", ctx->config_path ? ctx->config_path : "config",
			  ctx->section ? ctx->section->name : ctx->name, key, message);
}

const struct smcore_host vm_host_services = {
	.size = sizeof(struct smcore_host),
	.log = host_log,
	.error = host_error,
	.gpa_read = host_gpa_read,
	.gpa_write = host_gpa_write,
	.gpa_to_hva = host_gpa_to_hva,
	.irq_set = host_irq_set,
	.fd_watch = host_fd_watch,
	.fd_unwatch = host_fd_unwatch,
	.timer_add = host_timer_add,
	.config_get = host_config_get,
	.config_error = host_config_error,
	.config_path = device__config_path,
	.queue_pop = device__queue_pop,
	.queue_push = device__queue_push,
	.config_changed = device__config_changed,
};
