/* SPDX-License-Identifier: Apache-2.0 */
/* The INI machine config: parsing, validation and defaults (see docs/config.md). */
#ifndef SMCORE_CONFIG_H
#define SMCORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <smcore/plugin.h>

#include "error.h"

#define CONFIG_DEFAULT_ACCELERATOR "hv-kvm"
#define CONFIG_DEFAULT_MEMORY_BYTES (256ull << 20)
#define CONFIG_MIN_MEMORY_BYTES (16ull << 20)
#define CONFIG_MEMORY_ALIGNMENT 4096ull
#define CONFIG_MAX_VCPUS 32u
#define CONFIG_DEFAULT_CMDLINE "quiet"

/* The core's keys, as indexes of machine_config.key_lines. */
enum config_key {
	CONFIG_MACHINE_ACCELERATOR,
	CONFIG_MACHINE_MEMORY,
	CONFIG_MACHINE_VCPUS,
	CONFIG_MACHINE_CPU_TEMPLATE,
	CONFIG_MACHINE_CONSOLE,
	CONFIG_MACHINE_PLUGIN_DIR,
	CONFIG_KERNEL_KERNEL,
	CONFIG_KERNEL_INITRD,
	CONFIG_KERNEL_CMDLINE,
	CONFIG_INITRAMFS_FILE,
	CONFIG_RUN_ARGV,
	CONFIG_RUN_ENV,
	CONFIG_RUN_CWD,
	CONFIG_RUN_TIMEOUT,
	CONFIG_ROOTFS_IMAGE,
	CONFIG_KEY_COUNT
};

/* One [initramfs] file entry. */
struct config_file {
	char *host_path;  /* absolute */
	char *guest_path; /* absolute and normalized */
	int line;         /* 0 when it came from --set */
};

/* One key of a [device.NAME] section, as written. */
struct config_value {
	char *key;
	char *value;
	int line;         /* 0 when it came from --set, -1 when smcore made it ([rootfs] disk) */
};

/* A raw [device.NAME] section, kept for the device plugin to validate. */
struct config_section {
	char *name;       /* NAME, without the "device." prefix */
	int line;         /* line of the section header, 0 when created by --set, -1 when smcore made it */
	size_t count;
	struct config_value *values; /* in file order, then --set order */
};

struct machine_config {
	char *path;             /* the config file as given */
	char *dir;              /* its directory (absolute), the base of relative paths */
	/* [machine] */
	char *accelerator;      /* plugin name, default "hv-kvm" */
	uint64_t memory_bytes;  /* default 256 MiB, at least 16 MiB, rounded up to a multiple of 4 KiB */
	unsigned vcpus;         /* default 1, 1..32 */
	enum smcore_cpu_template cpu_template; /* "host" (default) or "baseline" */
	char *console;          /* absolute path, or NULL for standard output */
	char *plugin_dir;       /* absolute path or NULL */
	/* [kernel] */
	char *kernel;           /* absolute path or NULL for the bundled kernel */
	char *initrd;           /* absolute path or NULL */
	char *cmdline;          /* appended after the core's own kernel arguments, default "quiet" */
	/* [initramfs] */
	struct config_file *files;
	size_t file_count;
	/* [run] */
	char **argv;            /* NULL-terminated; argc 0 means no command configured */
	size_t argc;
	char **env;             /* NULL-terminated "NAME=VALUE", one entry per NAME */
	size_t env_count;
	char *cwd;              /* absolute guest path or NULL */
	int timeout_seconds;    /* 0 means no timeout */
	/* [rootfs] */
	char *rootfs_image;     /* absolute path of an OCI image to run, or NULL */
	/* [device.NAME] */
	struct config_section *devices;
	size_t device_count;
	/* Line of the file where each key was last set, 0 for defaults and --set. */
	int key_lines[CONFIG_KEY_COUNT];
};

/*
 * Parse `path` and then apply `overrides` ("section.key=value" strings from
 * --set, in order) as if they were the last lines of the file. Returns 0 or
 * -errno; on error err->message is "FILE:LINE: section.key: problem" (for
 * --set: "--set section.key=value: section.key: problem") and the struct is
 * freed.
 */
int config__load(struct machine_config *config, const char *path, char *const *overrides,
		 size_t override_count, struct sm_error *err);
/* Replace [run] argv with a copy of `argv` (from `smcore --config FILE -- CMD ARGS`); returns 0, -EINVAL for an empty command or -ENOMEM. */
int config__set_argv(struct machine_config *config, char *const *argv, size_t argc,
		     struct sm_error *err);
/* Free everything `config` owns and zero it; a zeroed struct is allowed. */
void config__free(struct machine_config *config);
/* Return the last value of `key` in a device section, so --set wins over the file; NULL when unset. */
const struct config_value *config__section_value(const struct config_section *section, const char *key);
/* Parse a size such as 256M, 1G, 512MiB, 1048576 (bytes); returns 0 or -EINVAL. */
int config__parse_size(const char *text, uint64_t *bytes);
/* Return the "section.key" name of `key`, such as "machine.memory". */
const char *config__key_name(enum config_key key);

#endif
