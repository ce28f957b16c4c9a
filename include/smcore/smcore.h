/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libsmcore: run a machine config in a microVM from another program.
 *
 * Every function that returns int returns 0 on success or a negative errno,
 * and then fills the caller's struct smcore_error with a message for the user.
 */
#ifndef SMCORE_SMCORE_H
#define SMCORE_SMCORE_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SMCORE_API __attribute__((visibility("default")))
#else
#define SMCORE_API
#endif

enum smcore_error_kind {
	SMCORE_ERROR_NONE = 0,
	SMCORE_ERROR_CONFIG,   /* bad config, override or option: the user must change the input */
	SMCORE_ERROR_HOST,     /* this host cannot run the machine (accelerator missing or failed its probe) */
	SMCORE_ERROR_RUNTIME,  /* the machine failed to start or stopped abnormally */
};

struct smcore_error {
	int kind;             /* enum smcore_error_kind */
	int code;             /* positive errno */
	char message[1024];
};

struct smcore_options {
	const char *config_path;
	char *const *overrides;       /* "section.key=value" strings, applied after the file */
	size_t override_count;
	char *const *argv;            /* replaces [run] argv when argc > 0 */
	size_t argc;
	char *const *plugin_path;     /* colon-separated directory lists, searched first */
	size_t plugin_path_count;
};

struct smcore_result {
	int exit_status;      /* the workload's exit status, 128 + N for a death by signal N */
	int guest_signal;     /* N when a signal killed the workload, else 0 */
	double boot_ms;       /* from smcore_machine_run() to the first vCPU entry */
	double run_ms;        /* from smcore_machine_run() to the end of the run */
};

struct smcore_machine;

/* Parse and check a machine config; *machine is freed with smcore_machine_free(). */
SMCORE_API int smcore_machine_load(const struct smcore_options *options,
				   struct smcore_machine **machine, struct smcore_error *error);
/* Boot the machine and wait until its workload ends; result->exit_status is its status. */
SMCORE_API int smcore_machine_run(struct smcore_machine *machine, struct smcore_result *result,
				  struct smcore_error *error);
/* Write the initramfs the machine would boot with (init, files, run command) to `path`. */
SMCORE_API int smcore_machine_write_initramfs(struct smcore_machine *machine, const char *path,
					      struct smcore_error *error);
/* Write the complete kernel command line the machine boots with into `buf`; returns `buf`. */
SMCORE_API const char *smcore_machine_cmdline(struct smcore_machine *machine, char *buf, size_t size);
/* Stop a running machine from another thread; smcore_machine_run() then returns -EINTR. */
SMCORE_API void smcore_machine_stop(struct smcore_machine *machine);
SMCORE_API void smcore_machine_free(struct smcore_machine *machine);

/* Check that the accelerator named by the options' config (or hv-kvm) can run Linux guests here. */
SMCORE_API int smcore_probe(const struct smcore_options *options, struct smcore_error *error);
/* Print every plugin found along the search path; returns how many are valid. */
SMCORE_API int smcore_plugins_list(const struct smcore_options *options, FILE *out);

/* Log level: 0 errors, 1 warnings (the default), 2 info, 3 debug. */
SMCORE_API void smcore_set_log_level(int level);
SMCORE_API const char *smcore_version(void);

#ifdef __cplusplus
}
#endif

#endif
