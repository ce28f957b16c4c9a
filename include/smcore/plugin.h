/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smcore plugin ABI, version 1.
 *
 * A plugin is a shared object that exports one `const struct
 * smcore_plugin_descriptor` named `smcore_plugin_descriptor`. The loader reads
 * the descriptor without calling any plugin function (dlopen() still runs the
 * object's constructors) and checks the ABI major and every struct size. It
 * copies the kind's vtable into a zeroed struct of the core's own size, so
 * callbacks that an older plugin does not have read as NULL.
 *
 * Every callback returns 0 or a negative errno. A plugin never exits the
 * process: it reports the reason through `host->error()` and returns.
 */
#ifndef SMCORE_PLUGIN_H
#define SMCORE_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMCORE_ABI_MAJOR 1
#define SMCORE_ABI_MINOR 1

#define SMCORE_PLUGIN_DESCRIPTOR_SYMBOL "smcore_plugin_descriptor"

#if defined(__GNUC__)
#define SMCORE_EXPORT __attribute__((visibility("default")))
#else
#define SMCORE_EXPORT
#endif

/* Declares the exported descriptor: `SMCORE_PLUGIN = { ... };` */
#define SMCORE_PLUGIN \
	SMCORE_EXPORT extern const struct smcore_plugin_descriptor smcore_plugin_descriptor; \
	const struct smcore_plugin_descriptor smcore_plugin_descriptor

enum smcore_plugin_kind {
	SMCORE_PLUGIN_ACCELERATOR = 1,
	SMCORE_PLUGIN_DEVICE = 2,
	SMCORE_PLUGIN_CODEC = 3,
	SMCORE_PLUGIN_NET = 4,
};

/* A key the plugin accepts in its config section; the list ends with a NULL name. */
struct smcore_config_key {
	const char *name;
	const char *help;
};

struct smcore_plugin_descriptor {
	uint32_t abi_major;        /* SMCORE_ABI_MAJOR the plugin was built against */
	uint32_t abi_minor;        /* SMCORE_ABI_MINOR the plugin was built against */
	uint32_t size;             /* sizeof(struct smcore_plugin_descriptor) */
	uint32_t kind;             /* enum smcore_plugin_kind */
	const char *name;          /* unique plugin name, such as "hv-kvm" */
	const char *version;       /* the plugin's own version string */
	const char *license;       /* SPDX licence identifier */
	const char *description;   /* one line for `smcore plugins` */
	const void *ops;           /* the kind's vtable, such as struct smcore_accel_ops */
	uint32_t ops_size;         /* sizeof that vtable as the plugin built it */
	const struct smcore_config_key *config_keys; /* keys of its config section, or NULL */
};

/* ---- Host services ---------------------------------------------------- */

/* One buffer of a descriptor chain that the core has already checked against guest RAM. */
struct smcore_iovec {
	void *base;
	uint32_t len;
	uint32_t device_writable;
};

/* A descriptor chain popped from a virtqueue; return it with `used` bytes written. */
struct smcore_chain {
	uint16_t queue;
	uint16_t head;
	uint32_t count;
	struct smcore_iovec *iov;
};

enum smcore_log_level {
	SMCORE_LOG_ERROR = 0,
	SMCORE_LOG_WARNING = 1,
	SMCORE_LOG_INFO = 2,
	SMCORE_LOG_DEBUG = 3,
};

/* The core's per-plugin-instance context; opaque to plugins. */
struct smcore_ctx;

typedef void (*smcore_fd_callback)(void *opaque, int fd, uint32_t events);
typedef void (*smcore_timer_callback)(void *opaque);

/*
 * Services the core offers every plugin. Guest memory access is bounds-checked:
 * a range outside guest RAM returns -EFAULT (or NULL) and never touches host
 * memory. The table grows only at its end; check `size` before using a member
 * newer than ABI 1.0.
 */
struct smcore_host {
	uint32_t size;

	/* Log one line at the given level; the core prefixes the plugin's name. */
	void (*log)(struct smcore_ctx *ctx, enum smcore_log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
	/*
	 * Record the reason for a failure the plugin is about to return; returns
	 * -err. The core prefixes the plugin's name when it shows the message.
	 */
	int (*error)(struct smcore_ctx *ctx, int err, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* Copy between guest physical memory and a host buffer; 0 or -EFAULT. */
	int (*gpa_read)(struct smcore_ctx *ctx, uint64_t gpa, void *buf, size_t len);
	int (*gpa_write)(struct smcore_ctx *ctx, uint64_t gpa, const void *buf, size_t len);
	/* Host address of [gpa, gpa + len) if it lies inside one RAM region, else NULL. */
	void *(*gpa_to_hva)(struct smcore_ctx *ctx, uint64_t gpa, uint64_t len);

	/* Drive interrupt line `line` (a GSI) to `level` (0 or 1). */
	int (*irq_set)(struct smcore_ctx *ctx, uint32_t line, int level);

	/* Event loop: watch an fd for EPOLLIN/EPOLLOUT events, or run a callback after `ns`. */
	int (*fd_watch)(struct smcore_ctx *ctx, int fd, uint32_t events,
			smcore_fd_callback cb, void *opaque);
	int (*fd_unwatch)(struct smcore_ctx *ctx, int fd);
	int (*timer_add)(struct smcore_ctx *ctx, uint64_t ns,
			 smcore_timer_callback cb, void *opaque);

	/* Value of `key` in the plugin's config section, or NULL when not set. */
	const char *(*config_get)(struct smcore_ctx *ctx, const char *key);
	/* Report an invalid value of `key` as "FILE:LINE: section.key: message"; returns -EINVAL. */
	int (*config_error)(struct smcore_ctx *ctx, const char *key, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* ---- Since ABI 1.1: for device plugins, on their own device ---- */

	/*
	 * Value of `key` as a host path: a relative value is resolved against the
	 * directory of the config file that set it. NULL when not set. The string
	 * lives as long as the device.
	 */
	const char *(*config_path)(struct smcore_ctx *ctx, const char *key);
	/*
	 * Take the next descriptor chain the driver made available on `queue`.
	 * Returns 1 with `chain` and iov[0..chain->count) filled (readable buffers
	 * first, each one wholly inside guest RAM), 0 when the queue is empty, or
	 * -EINVAL when the queue is not ready or is broken. A chain of more than
	 * `max_iov` buffers breaks the queue. Any thread may call it.
	 */
	int (*queue_pop)(struct smcore_ctx *ctx, uint16_t queue, struct smcore_chain *chain,
			 struct smcore_iovec *iov, uint32_t max_iov);
	/*
	 * Give chain `head` of `queue` back to the driver with `written` bytes
	 * stored in its writable buffers, and interrupt the guest if it asked for
	 * that. Returns 0 or -EINVAL.
	 */
	int (*queue_push)(struct smcore_ctx *ctx, uint16_t queue, uint16_t head, uint32_t written);
	/* Tell the driver that the device's config space changed. */
	void (*config_changed)(struct smcore_ctx *ctx);
};

/* ---- Accelerator ------------------------------------------------------ */

struct smcore_x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type;
	uint8_t present, dpl, db, s, l, g, avl;
};

struct smcore_x86_dtable {
	uint64_t base;
	uint16_t limit;
};

/* The vCPU state at its first entry, as the boot code or a test guest sets it up. */
struct smcore_x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	struct smcore_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct smcore_x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
};

enum smcore_cpu_template {
	SMCORE_CPU_TEMPLATE_HOST = 0,     /* everything the accelerator supports */
	SMCORE_CPU_TEMPLATE_BASELINE = 1, /* a fixed, portable feature set */
};

struct smcore_vm_config {
	uint32_t size;            /* sizeof(struct smcore_vm_config) */
	uint32_t vcpus;
	uint64_t memory_bytes;
	uint32_t cpu_template;    /* enum smcore_cpu_template */
	uint32_t flags;           /* SMCORE_VM_* */
};

/* Without an in-kernel interrupt controller HLT exits to the VMM (test guests use this). */
#define SMCORE_VM_NO_IRQCHIP (1u << 0)

enum smcore_exit_reason {
	SMCORE_EXIT_NONE = 0,
	SMCORE_EXIT_IO,             /* port I/O: exit.io */
	SMCORE_EXIT_MMIO,           /* MMIO outside guest RAM: exit.mmio */
	SMCORE_EXIT_HLT,            /* the vCPU halted with no in-kernel irqchip to wait on */
	SMCORE_EXIT_SHUTDOWN,       /* triple fault */
	SMCORE_EXIT_RESET,          /* the guest asked for a reset */
	SMCORE_EXIT_POWEROFF,       /* the guest asked to power off */
	SMCORE_EXIT_INTERRUPTED,    /* kick_vcpu() or a signal stopped the run */
	SMCORE_EXIT_INTERNAL_ERROR, /* the accelerator failed; exit.error.message gives the reason */
};

struct smcore_exit {
	uint32_t reason; /* enum smcore_exit_reason */
	union {
		struct {
			uint16_t port;
			uint8_t size;      /* 1, 2 or 4 bytes per access */
			uint8_t is_write;
			uint32_t count;    /* accesses, > 1 for REP INS/OUTS */
			uint8_t *data;     /* size * count bytes; the VMM fills it for reads */
		} io;
		struct {
			uint64_t gpa;
			uint32_t len;      /* 1 to 8 */
			uint8_t is_write;
			uint8_t *data;     /* len bytes; the VMM fills it for reads */
		} mmio;
		struct {
			uint64_t code;
			char message[160];
		} error;
	};
};

struct smcore_vm;   /* accelerator-private */
struct smcore_vcpu; /* accelerator-private */

/*
 * An accelerator runs vCPUs on a hypervisor. Data returned for an I/O or MMIO
 * read is written into exit->io.data or exit->mmio.data, and the next
 * run_vcpu() hands it to the guest.
 */
struct smcore_accel_ops {
	/* Optional: 0 if this host can run Linux guests, else -ENOTSUP with the failed check reported. */
	int (*probe)(const struct smcore_host *host, struct smcore_ctx *ctx);
	int (*create)(const struct smcore_host *host, struct smcore_ctx *ctx,
		      const struct smcore_vm_config *config, struct smcore_vm **vm);
	int (*map_memory)(struct smcore_vm *vm, uint32_t slot, uint64_t gpa,
			  uint64_t size, void *hva);
	/* Create vCPU `index` (0 is the boot processor) with its CPUID, MSRs and local APIC set up. */
	int (*create_vcpu)(struct smcore_vm *vm, uint32_t index, struct smcore_vcpu **vcpu);
	/*
	 * Load registers for the first entry. With an in-kernel irqchip only the
	 * boot vCPU needs this: application processors wait for INIT/SIPI.
	 */
	int (*set_regs)(struct smcore_vcpu *vcpu, const struct smcore_x86_regs *regs);
	/* Run until the next exit the VMM must handle. Call from the vCPU's own thread. */
	int (*run_vcpu)(struct smcore_vcpu *vcpu, struct smcore_exit *exit);
	/*
	 * Make a running or about-to-run run_vcpu() return SMCORE_EXIT_INTERRUPTED.
	 * Any thread may call it while the vCPU's thread has not exited.
	 */
	void (*kick_vcpu)(struct smcore_vcpu *vcpu);
	int (*irq_line)(struct smcore_vm *vm, uint32_t gsi, int level);
	/*
	 * Save or restore state as an opaque, versioned blob; vcpu NULL means the
	 * VM-wide state. The vCPU must not be inside run_vcpu().
	 */
	int (*save_state)(struct smcore_vm *vm, struct smcore_vcpu *vcpu,
			  void **blob, size_t *blob_size); /* caller frees *blob with free() */
	int (*restore_state)(struct smcore_vm *vm, struct smcore_vcpu *vcpu,
			     const void *blob, size_t blob_size);
	void (*destroy_vcpu)(struct smcore_vcpu *vcpu);
	void (*destroy)(struct smcore_vm *vm);
	/* Optional: signal `fd` when the guest writes to `gpa`, without an exit. */
	int (*ioeventfd)(struct smcore_vm *vm, uint64_t gpa, uint32_t len, int fd, int assign);
	/* Optional: raise `gsi` when `fd` is signalled. */
	int (*irqfd)(struct smcore_vm *vm, uint32_t gsi, int fd, int assign);
	/*
	 * Optional: 1 if the vCPU can never run again by itself (halted with
	 * interrupts disabled, or never started), 0 if it can, or -errno. Call
	 * it from the vCPU's thread between run_vcpu() calls.
	 */
	int (*vcpu_stopped)(struct smcore_vcpu *vcpu);
	/*
	 * Optional, since ABI 1.1: the vCPU's instruction pointer, flags and
	 * whether it is halted, for diagnostics. The vCPU must not be inside
	 * run_vcpu().
	 */
	int (*vcpu_where)(struct smcore_vcpu *vcpu, uint64_t *rip, uint64_t *rflags, int *halted);
};

/* ---- Device ----------------------------------------------------------- */

struct smcore_device; /* device-private */

struct smcore_device_info {
	uint32_t virtio_id;        /* virtio device id, such as 2 for block */
	uint64_t features;         /* device feature bits offered */
	uint32_t queues;           /* number of virtqueues */
	uint16_t queue_max_size;
	uint32_t config_size;      /* bytes of device config space */
};

/*
 * A virtio device behind a virtio-mmio transport that the core owns. The core
 * parses the rings, and the device gets only chains that host->queue_pop checked.
 */
struct smcore_device_ops {
	/*
	 * Read the device's keys with host->config_get and host->config_path,
	 * report a bad one with host->config_error, and fill `info`. Called once,
	 * before the guest starts.
	 */
	int (*realize)(const struct smcore_host *host, struct smcore_ctx *ctx,
		       struct smcore_device **dev, struct smcore_device_info *info);
	/*
	 * The guest notified `queue`. This runs on a vCPU or event-loop thread,
	 * so a device that does slow work hands it to a thread of its own and
	 * returns.
	 */
	int (*queue_notify)(struct smcore_device *dev, uint16_t queue);
	/* The driver reset the device: forget queue state and stop using its chains. */
	int (*reset)(struct smcore_device *dev);
	/* Optional: the device state as an opaque, versioned blob; needed to snapshot the VM. */
	int (*save)(struct smcore_device *dev, void **blob, size_t *blob_size);
	int (*restore)(struct smcore_device *dev, const void *blob, size_t blob_size);
	/* Optional: config space access at `offset` (checked against config_size). */
	int (*config_read)(struct smcore_device *dev, uint32_t offset, void *data, uint32_t len);
	int (*config_write)(struct smcore_device *dev, uint32_t offset, const void *data, uint32_t len);
	/* Optional: the driver accepted `features`. */
	int (*set_features)(struct smcore_device *dev, uint64_t features);
	void (*destroy)(struct smcore_device *dev);
};

/* ---- Snapshot codec --------------------------------------------------- */

#define SMCORE_CODEC_MAPPABLE (1u << 0) /* output can be mapped copy-on-write as guest RAM */

struct smcore_codec_ops {
	uint32_t (*flags)(void);
	/* Write `len` bytes of guest memory at `mem` to `fd`. */
	int (*encode)(struct smcore_ctx *ctx, const void *mem, uint64_t len, int fd);
	/* Fill `len` bytes at `mem` from `fd`. */
	int (*decode)(struct smcore_ctx *ctx, int fd, void *mem, uint64_t len);
};

/* ---- Network transport ------------------------------------------------ */

struct smcore_net; /* transport-private */

struct smcore_net_ops {
	int (*attach)(const struct smcore_host *host, struct smcore_ctx *ctx, struct smcore_net **net);
	/* Forward host `host_port` to guest `guest_port` (protocol 6 = TCP, 17 = UDP). */
	int (*forward)(struct smcore_net *net, int protocol, uint16_t host_port, uint16_t guest_port);
	void (*detach)(struct smcore_net *net);
};

#ifdef __cplusplus
}
#endif

#endif
