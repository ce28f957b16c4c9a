/* SPDX-License-Identifier: Apache-2.0 */
/* The embedding API: load a machine config, boot its kernel and wait for the workload. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <smcore/smcore.h>

#include "config.h"
#include "device.h"
#include "host_file.h"
#include "image_import.h"
#include "initramfs.h"
#include "install_dir.h"
#include "log.h"
#include "plugin_loader.h"
#include "vm.h"
#include "x86_boot.h"

/* Arguments the core itself needs: the console on COM1, reset through the i8042, and no reboot loop after a panic. */
#define CORE_CMDLINE "console=ttyS0 reboot=k panic=-1 8250.nr_uarts=2"

/* The guest device of the root image: the first virtio-blk disk. */
#define ROOT_DEVICE "/dev/vda"
#define ROOT_DEVICE_PLUGIN "dev-blk"

struct smcore_machine {
	struct machine_config config;
	struct plugin_search search;
	struct sm_vm vm;
	int vm_created;
	int stop_requested;
	/* [rootfs]: the imported image and the read-only disk that serves it */
	struct image_root root;
	struct config_section root_section;
	struct config_value root_values[3];
	/* Device plugins, realized before the VM exists; the VM takes each one as it attaches */
	struct sm_device **devices;
	size_t device_count;
	/* The init's command: from [run] or the command line, else from the image's config */
	char **run_argv;
	char **run_env;
	const char *run_cwd;
};

static int fail(struct smcore_error *error, int kind, const struct sm_error *cause)
{
	if (error) {
		error->kind = kind;
		error->code = cause->code ? cause->code : EIO;
		snprintf(error->message, sizeof(error->message), "%s", cause->message);
	}
	return -(cause->code ? cause->code : EIO);
}

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* Count the VM's devices: the [rootfs] disk, if any, and the [device.NAME] sections. */
static size_t device_total(const struct machine_config *config)
{
	return config->device_count + (config->rootfs_image ? 1 : 0);
}

/* Reject what the parser accepts but this version cannot run, with the config line. */
static int check_supported(const struct machine_config *config, struct sm_error *err)
{
	static const char *const reserved[] = { "/init", "/dev/console", INITRAMFS_RUN_PATH };

	size_t devices = device_total(config);

	if (devices > DEVICE_MAX_COUNT)
		return sm_error__set(err, E2BIG,
			"%s: %zu devices%s, but a VM has at most %u; remove some [device.NAME] sections",
			config->path, devices, config->rootfs_image ? " with the [rootfs] disk" : "",
			DEVICE_MAX_COUNT);
	for (size_t i = 0; i < config->file_count; i++) {
		for (size_t j = 0; j < sizeof(reserved) / sizeof(reserved[0]); j++) {
			if (strcmp(config->files[i].guest_path, reserved[j]) == 0)
				return sm_error__set(err, EINVAL,
					"%s:%d: initramfs.file: guest path %s is reserved for smcore's own file; choose another path",
					config->path, config->files[i].line, reserved[j]);
		}
	}
	if (config->argc > 0 && config->argv[0][0] == '\0')
		return sm_error__set(err, EINVAL,
			"%s: run.argv: the command is an empty string; name a program to run",
			config->path);
	return 0;
}

SMCORE_API int smcore_machine_load(const struct smcore_options *options,
				   struct smcore_machine **out, struct smcore_error *error)
{
	struct smcore_machine *machine;
	struct sm_error err = { 0 };
	int ret;

	machine = calloc(1, sizeof(*machine));
	if (!machine) {
		sm_error__set(&err, ENOMEM, "out of memory");
		return fail(error, SMCORE_ERROR_RUNTIME, &err);
	}
	ret = config__load(&machine->config, options->config_path, options->overrides,
			   options->override_count, &err);
	if (!ret && options->argc > 0)
		ret = config__set_argv(&machine->config, options->argv, options->argc, &err);
	if (ret) {
		free(machine);
		return fail(error, SMCORE_ERROR_CONFIG, &err);
	}
	ret = check_supported(&machine->config, &err);
	if (ret) {
		smcore_machine_free(machine);
		return fail(error, SMCORE_ERROR_CONFIG, &err);
	}
	if (machine->config.argc == 0 && !machine->config.rootfs_image) {
		sm_error__set(&err, EINVAL,
			"%s: no command to run: set [run] argv in the config or give one after '--'",
			options->config_path);
		smcore_machine_free(machine);
		return fail(error, SMCORE_ERROR_CONFIG, &err);
	}
	ret = plugin_search__init(&machine->search, options->plugin_path, options->plugin_path_count,
				  machine->config.plugin_dir);
	if (ret) {
		sm_error__set(&err, -ret, "out of memory");
		smcore_machine_free(machine);
		return fail(error, SMCORE_ERROR_RUNTIME, &err);
	}
	*out = machine;
	return 0;
}

/* Path of a file bundled with smcore (the kernel, the init). */
static int bundled_path(const char *name, char *path, size_t size, struct sm_error *err)
{
	char relative[PATH_MAX];

	snprintf(relative, sizeof(relative), "%s/%s", SMCORE_DATA_RELDIR, name);
	if (install_dir__path(relative, path, size) != 0 || access(path, R_OK) != 0)
		return sm_error__set(err, ENOENT,
			"bundled %s not found at %s: build it (cmake --build) or set it in the config",
			name, path);
	return 0;
}

/*
 * Import the [rootfs] image unless the cache has it, and describe the
 * read-only disk that serves it as a device section of its own.
 */
static int prepare_root(struct smcore_machine *machine, struct sm_error *err)
{
	const struct machine_config *config = &machine->config;
	struct config_value *values = machine->root_values;
	char *cache_dir;
	int ret;

	if (!config->rootfs_image || machine->root.path)
		return 0;
	cache_dir = image_import__default_cache_dir();
	if (!cache_dir)
		return sm_error__set(err, ENOMEM, "out of memory");
	image_import__set_cancel_flag(&machine->stop_requested);
	ret = image_import__cached(config->rootfs_image, cache_dir, &machine->root, err);
	image_import__set_cancel_flag(NULL);
	free(cache_dir);
	if (ret) {
		sm_error__prefix(err, "%s:%d: rootfs.image", config->path, config->key_lines[CONFIG_ROOTFS_IMAGE]);
		return ret;
	}
	log_info("machine", "root image %s: %s (sha256:%.12s)", machine->root.imported ? "imported" : "cached",
		 machine->root.path, machine->root.config.manifest_digest);
	/* Line -1 marks values that smcore wrote itself, neither in the file nor from --set. */
	values[0] = (struct config_value){ .key = strdup("plugin"), .value = strdup(ROOT_DEVICE_PLUGIN), .line = -1 };
	values[1] = (struct config_value){ .key = strdup("path"), .value = strdup(machine->root.path), .line = -1 };
	values[2] = (struct config_value){ .key = strdup("readonly"), .value = strdup("true"), .line = -1 };
	machine->root_section = (struct config_section){
		.name = strdup("rootfs"), .line = -1, .count = 3, .values = values,
	};
	for (size_t i = 0; i < 3; i++) {
		if (!values[i].key || !values[i].value || !machine->root_section.name)
			return sm_error__set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static size_t count_strings(char *const *strings)
{
	size_t count = 0;

	while (strings && strings[count])
		count++;
	return count;
}

static int env_has_name(char *const *env, size_t count, const char *entry)
{
	size_t name_len = strcspn(entry, "=");

	for (size_t i = 0; i < count; i++) {
		if (strncmp(env[i], entry, name_len) == 0 && env[i][name_len] == '=')
			return 1;
	}
	return 0;
}

/*
 * Compose the init's command. A command from [run] argv or after "--"
 * replaces the image's Entrypoint and Cmd. [run] env entries override the
 * image's Env by name, and [run] cwd overrides its WorkingDir. The strings
 * stay owned by the config and the image.
 */
static int compose_run(struct smcore_machine *machine, struct sm_error *err)
{
	const struct machine_config *config = &machine->config;
	const struct oci_image *image = config->rootfs_image ? &machine->root.config : NULL;
	size_t entrypoint = image ? count_strings(image->entrypoint) : 0;
	size_t cmd = image ? count_strings(image->cmd) : 0;
	size_t image_env = image ? count_strings(image->env) : 0, envc = 0;

	free(machine->run_argv);
	free(machine->run_env);
	machine->run_argv = calloc(config->argc + entrypoint + cmd + 1, sizeof(char *));
	machine->run_env = calloc(config->env_count + image_env + 1, sizeof(char *));
	if (!machine->run_argv || !machine->run_env)
		return sm_error__set(err, ENOMEM, "out of memory");

	if (config->argc > 0) {
		memcpy(machine->run_argv, config->argv, config->argc * sizeof(char *));
	} else if (entrypoint + cmd > 0) {
		memcpy(machine->run_argv, image->entrypoint, entrypoint * sizeof(char *));
		memcpy(machine->run_argv + entrypoint, image->cmd, cmd * sizeof(char *));
	} else {
		return sm_error__set(err, EINVAL,
			"%s: the image %s has no Entrypoint or Cmd: set [run] argv in the config or give a command after '--'",
			config->path, config->rootfs_image);
	}
	if (!machine->run_argv[0][0])
		return sm_error__set(err, EINVAL, "%s: the image %s names an empty command; give one after '--'",
				     config->path, config->rootfs_image);

	for (size_t i = 0; i < image_env; i++) {
		if (!strchr(image->env[i], '=') || image->env[i][0] == '=')
			return sm_error__set(err, EINVAL, "%s: the image's Env entry '%.60s' is not NAME=VALUE; fix the image or override the command's environment with [run] env",
					     config->rootfs_image, image->env[i]);
		if (!env_has_name(config->env, config->env_count, image->env[i]))
			machine->run_env[envc++] = image->env[i];
	}
	if (config->env_count > 0)
		memcpy(machine->run_env + envc, config->env, config->env_count * sizeof(char *));
	machine->run_cwd = config->cwd;
	if (!machine->run_cwd && image && image->working_dir[0]) {
		if (image->working_dir[0] != '/')
			return sm_error__set(err, EINVAL, "%s: the image's WorkingDir '%.60s' is not absolute; set [run] cwd",
					     config->rootfs_image, image->working_dir);
		machine->run_cwd = image->working_dir;
	}
	return 0;
}

/* The initramfs: the user's initrd, if any, followed by the core's own archive. */
static int build_initrd(const struct smcore_machine *machine, uint8_t **data, size_t *size,
			struct sm_error *err)
{
	const struct machine_config *config = &machine->config;

	struct initramfs_file *files = NULL;
	struct initramfs_spec spec = { 0 };
	uint8_t *user = NULL, *own = NULL;
	size_t user_size = 0, own_size = 0, padded;
	char init_path[PATH_MAX];
	int ret;

	ret = bundled_path("smcore-init", init_path, sizeof(init_path), err);
	if (ret)
		return ret;
	if (config->file_count) {
		files = calloc(config->file_count, sizeof(*files));
		if (!files)
			return sm_error__set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < config->file_count; i++)
		files[i] = (struct initramfs_file){ config->files[i].host_path, config->files[i].guest_path };
	spec = (struct initramfs_spec){
		.init_path = init_path, .files = files, .file_count = config->file_count,
		.run = {
			.argv = machine->run_argv, .env = machine->run_env, .cwd = machine->run_cwd,
			.root = config->rootfs_image ? ROOT_DEVICE : NULL,
			.root_type = machine->root.fs_type,
			.user = config->rootfs_image ? machine->root.config.user : NULL,
		},
	};
	ret = initramfs__build(&spec, &own, &own_size, err);
	free(files);
	if (ret)
		return ret;
	if (!config->initrd) {
		*data = own;
		*size = own_size;
		return 0;
	}

	ret = host_file__read("initrd", config->initrd, &user, &user_size, NULL, err);
	if (ret) {
		free(own);
		return ret;
	}
	/* Concatenated cpio archives must each start on a 4-byte boundary. */
	padded = (user_size + 3) & ~(size_t)3;
	*data = calloc(1, padded + own_size);
	if (!*data) {
		free(user);
		free(own);
		return sm_error__set(err, ENOMEM, "out of memory");
	}
	memcpy(*data, user, user_size);
	memcpy(*data + padded, own, own_size);
	*size = padded + own_size;
	free(user);
	free(own);
	return 0;
}

static int open_console(const struct machine_config *config, int *fd, struct sm_error *err)
{
	if (!config->console) {
		*fd = STDOUT_FILENO;
		return 0;
	}
	*fd = open(config->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return sm_error__set(err, errno, "%s:%d: machine.console: %s: cannot open: %s",
				     config->path, config->key_lines[CONFIG_MACHINE_CONSOLE],
				     config->console, strerror(errno));
	return 0;
}

static int load_accelerator(struct smcore_machine *machine, struct sm_plugin **plugin,
			    struct sm_error *err)
{
	return plugin__find(&machine->search, machine->config.accelerator, SMCORE_PLUGIN_ACCELERATOR,
			    plugin, err);
}

static uint64_t fnv1a(uint64_t hash, const void *data, size_t len)
{
	const uint8_t *bytes = data;

	for (size_t i = 0; i < len; i++) {
		hash ^= bytes[i];
		hash *= 0x100000001b3ull;
	}
	return hash;
}

/*
 * A passed probe is remembered until the host reboots or the plugin file
 * changes: the file name hashes the kernel's boot id and the plugin's path,
 * size and modification time. Returns -ENOENT when there is nowhere to keep it.
 */
static int probe_cache_path(const struct sm_plugin *plugin, char *path, size_t size)
{
	char boot_id[64] = "", dir[PATH_MAX];
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	uint64_t hash = 0xcbf29ce484222325ull;
	struct stat st;
	FILE *file;

	file = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!file)
		return -ENOENT;
	if (!fgets(boot_id, sizeof(boot_id), file))
		boot_id[0] = '\0';
	fclose(file);
	if (!boot_id[0] || stat(plugin->path, &st) != 0)
		return -ENOENT;

	hash = fnv1a(hash, boot_id, strlen(boot_id));
	hash = fnv1a(hash, plugin->path, strlen(plugin->path));
	hash = fnv1a(hash, &st.st_size, sizeof(st.st_size));
	hash = fnv1a(hash, &st.st_mtim, sizeof(st.st_mtim));
	if (runtime && runtime[0] == '/')
		snprintf(dir, sizeof(dir), "%s/smcore", runtime);
	else if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/run/smcore");
	else
		snprintf(dir, sizeof(dir), "/tmp/smcore-%u", (unsigned)geteuid());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	snprintf(path, size, "%s/probe-passed-%s-%016llx", dir, plugin->desc.name,
		 (unsigned long long)hash);
	return 0;
}

/*
 * Run the accelerator's probe, if it has one; -ENOTSUP when Linux guests
 * cannot run here. With `use_cache`, a pass recorded since the host booted
 * skips it: the probe boots two tiny VMs, which costs a visible part of a
 * guest's start on a slow host.
 */
static int probe_accelerator(struct sm_plugin *plugin, int use_cache, struct sm_error *err)
{
	struct sm_error probe_err = { 0 };
	struct smcore_ctx ctx = { .name = plugin->desc.name, .err = &probe_err };
	char cache[PATH_MAX];
	int have_cache, ret, fd;

	if (!plugin->ops.accel.probe)
		return 0;
	have_cache = probe_cache_path(plugin, cache, sizeof(cache)) == 0;
	if (use_cache && have_cache && access(cache, F_OK) == 0) {
		log_info("machine", "%s: probe passed earlier since this host booted (%s)",
			 plugin->desc.name, cache);
		return 0;
	}

	ret = plugin->ops.accel.probe(&vm_host_services, &ctx);
	if (ret)
		return sm_error__set(err, -ret, "%s: %s", plugin->desc.name,
				     probe_err.code ? probe_err.message : strerror(-ret));
	if (have_cache) {
		fd = open(cache, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/*
 * Realize every device before the VM exists, so a bad device section fails
 * before anything slow happens: the root image's disk first, so that it is
 * /dev/vda, then the [device.NAME] sections in file order.
 */
static int create_devices(struct smcore_machine *machine, struct sm_error *err)
{
	const struct machine_config *config = &machine->config;
	size_t total = device_total(config);
	const struct config_section *section;
	int ret;

	if (total == 0)
		return 0;
	machine->devices = calloc(total, sizeof(*machine->devices));
	if (!machine->devices)
		return sm_error__set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < total; i++) {
		section = config->rootfs_image ? (i == 0 ? &machine->root_section : &config->devices[i - 1])
					       : &config->devices[i];
		ret = device__create(&machine->search, section, config->path, config->dir,
				     &machine->devices[i], err);
		if (ret)
			return ret;
		machine->device_count = i + 1;
	}
	return 0;
}

/* Hand the devices to the VM in order; each attached one is the VM's to free. */
static int attach_devices(struct smcore_machine *machine, struct sm_error *err)
{
	int ret;

	for (size_t i = 0; i < machine->device_count; i++) {
		ret = device__attach(&machine->vm, machine->devices[i], i, err);
		if (ret)
			return ret;
		machine->devices[i] = NULL;
	}
	return 0;
}

static void destroy_devices(struct smcore_machine *machine)
{
	for (size_t i = 0; i < machine->device_count; i++)
		device__destroy(machine->devices[i]);
	free(machine->devices);
	machine->devices = NULL;
	machine->device_count = 0;
}

/*
 * Load the kernel and initramfs into a new VM and start its vCPUs. A bad
 * kernel, initrd or initramfs file sets *error_kind to SMCORE_ERROR_CONFIG,
 * because the user fixes it in the config.
 */
static int boot_guest(struct smcore_machine *machine, struct sm_plugin *accel, int console_fd,
		      const struct timespec *start, int *error_kind, struct sm_error *err)
{
	const struct machine_config *config = &machine->config;
	struct vm_options vm_options = {
		.accel_plugin = accel, .memory_bytes = config->memory_bytes, .vcpus = config->vcpus,
		.cpu_template = config->cpu_template, .console_fd = console_fd,
	};
	char kernel_path[PATH_MAX], cmdline[4096];
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t kernel_size = 0, initrd_size = 0;
	struct smcore_x86_regs regs;
	int kernel_fd = -1, ret;

	if (config->kernel)
		snprintf(kernel_path, sizeof(kernel_path), "%s", config->kernel);
	else if ((ret = bundled_path("vmlinux", kernel_path, sizeof(kernel_path), err)))
		return ret;
	/* Mapped, not read: the loader maps or copies its segments straight into guest memory. */
	*error_kind = SMCORE_ERROR_CONFIG;
	ret = host_file__map("kernel", kernel_path, &kernel, &kernel_size, &kernel_fd, err);
	if (ret)
		return ret;
	ret = build_initrd(machine, &initrd, &initrd_size, err);
	if (ret)
		goto out;
	*error_kind = SMCORE_ERROR_RUNTIME;
	smcore_machine_cmdline(machine, cmdline, sizeof(cmdline));
	log_info("machine", "%.1f ms: initramfs packed (%zu bytes)", elapsed_ms(start), initrd_size);

	ret = vm__create(&machine->vm, &vm_options, err);
	if (ret)
		goto out;
	machine->vm_created = 1;
	/* A stop requested before the VM existed has nothing to stop yet; honour it now. */
	if (__atomic_load_n(&machine->stop_requested, __ATOMIC_ACQUIRE))
		vm__request_stop(&machine->vm, VM_STOP_SIGNAL, "stopped by the host program");
	log_info("machine", "%.1f ms: VM created", elapsed_ms(start));
	ret = attach_devices(machine, err);
	if (ret)
		goto out;
	ret = x86_boot__setup(&machine->vm.mem, &(struct x86_boot_input){
			.kernel_path = kernel_path, .kernel = kernel, .kernel_size = kernel_size,
			.kernel_fd = &kernel_fd, .cmdline = cmdline, .initrd = initrd, .initrd_size = initrd_size,
			.vcpus = config->vcpus,
		}, &regs, err);
	if (ret) {
		*error_kind = SMCORE_ERROR_CONFIG;
		if (ret == -EFBIG)
			sm_error__prefix(err, "%s: machine.memory (%llu MiB) is too small for this kernel and initramfs; raise it",
					 config->path, (unsigned long long)(config->memory_bytes >> 20));
		goto out;
	}
	log_info("machine", "%.1f ms: booting %s with %u vCPUs, %llu MiB, command line '%s'",
		 elapsed_ms(start), kernel_path, config->vcpus,
		 (unsigned long long)(config->memory_bytes >> 20), cmdline);
	ret = vm__start(&machine->vm, &regs, err);
out:
	munmap(kernel, kernel_size);
	close(kernel_fd);
	free(initrd);
	return ret;
}

/* Log where each vCPU stopped, to show where a guest that timed out was. */
static void log_vcpus(struct sm_vm *vm)
{
	uint64_t rip, rflags;
	int halted;

	if (!vm->accel->vcpu_where)
		return;
	for (uint32_t i = 0; i < vm->vcpu_count; i++) {
		if (vm->accel->vcpu_where(vm->vcpus[i].handle, &rip, &rflags, &halted) == 0)
			log_warning("machine", "vCPU %u: RIP 0x%llx, RFLAGS 0x%llx%s", i, (unsigned long long)rip,
				    (unsigned long long)rflags, halted ? ", halted" : "");
	}
}

/* Turn the way the run ended into the workload's exit status or an error. */
static int collect_result(struct smcore_machine *machine, enum vm_stop_reason reason,
			  struct smcore_result *result, int *error_kind, struct sm_error *err)
{
	struct sm_vm *vm = &machine->vm;

	*error_kind = SMCORE_ERROR_RUNTIME;
	if (reason == VM_STOP_TIMEOUT) {
		log_vcpus(vm);
		for (size_t i = 0; i < vm->device_count; i++)
			device__log_state(vm->devices[i]);
		return sm_error__set(err, ETIMEDOUT, "the workload timed out after %d s ([run] timeout)",
				     machine->config.timeout_seconds);
	}
	if (reason == VM_STOP_SIGNAL || machine->stop_requested)
		return sm_error__set(err, EINTR, "the run was interrupted");
	if (reason == VM_STOP_ERROR)
		return sm_error__set(err, EIO, "the VM failed: %s", vm->stop_message);
	if (vm->guest_status == VM_GUEST_STATUS_NONE)
		return sm_error__set(err, EPIPE,
			"the guest stopped (%s) before its init reported an exit status; the kernel may have panicked or the init failed: see the console output",
			vm->stop_message);

	if (vm->guest_status == VM_GUEST_STATUS_SIGNAL) {
		result->guest_signal = vm->guest_status_value;
		result->exit_status = 128 + vm->guest_status_value;
	} else {
		result->exit_status = vm->guest_status_value;
	}
	return 0;
}

SMCORE_API int smcore_machine_run(struct smcore_machine *machine, struct smcore_result *result,
				  struct smcore_error *error)
{
	struct sm_error err = { 0 };
	struct sm_plugin *accel = NULL;
	enum vm_stop_reason reason;
	struct timespec start;
	int console_fd = -1, kind = SMCORE_ERROR_RUNTIME, ret;

	clock_gettime(CLOCK_MONOTONIC, &start);
	memset(result, 0, sizeof(*result));
	/* What the user fixes in the config fails first: the image, the command, the devices. */
	ret = prepare_root(machine, &err);
	if (!ret)
		ret = compose_run(machine, &err);
	if (!ret)
		ret = create_devices(machine, &err);
	if (ret) {
		kind = ret == -ENOMEM ? SMCORE_ERROR_RUNTIME : SMCORE_ERROR_CONFIG;
		if (ret == -EINTR)
			kind = SMCORE_ERROR_RUNTIME;
		goto out;
	}
	ret = load_accelerator(machine, &accel, &err);
	if (ret) {
		kind = SMCORE_ERROR_HOST;
		goto out;
	}
	ret = probe_accelerator(accel, 1, &err);
	if (ret) {
		kind = SMCORE_ERROR_HOST;
		goto out;
	}
	ret = open_console(&machine->config, &console_fd, &err);
	if (ret) {
		kind = SMCORE_ERROR_CONFIG;
		goto out;
	}
	log_info("machine", "%.1f ms: accelerator ready", elapsed_ms(&start));
	ret = boot_guest(machine, accel, console_fd, &start, &kind, &err);
	if (ret)
		goto out;
	result->boot_ms = elapsed_ms(&start);

	reason = vm__wait(&machine->vm, (uint64_t)machine->config.timeout_seconds * 1000);
	result->run_ms = elapsed_ms(&start);
	ret = collect_result(machine, reason, result, &kind, &err);
out:
	if (machine->vm_created) {
		vm__destroy(&machine->vm);
		machine->vm_created = 0;
	}
	destroy_devices(machine);
	if (console_fd >= 0 && console_fd != STDOUT_FILENO)
		close(console_fd);
	plugin__close(accel);
	return ret ? fail(error, kind, &err) : 0;
}

SMCORE_API int smcore_machine_write_initramfs(struct smcore_machine *machine, const char *path,
					      struct smcore_error *error)
{
	struct sm_error err = { 0 };
	uint8_t *data = NULL;
	size_t size = 0, done = 0;
	int fd, ret;

	ret = prepare_root(machine, &err);
	if (!ret)
		ret = compose_run(machine, &err);
	if (!ret)
		ret = build_initrd(machine, &data, &size, &err);
	if (ret)
		return fail(error, SMCORE_ERROR_RUNTIME, &err);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		sm_error__set(&err, errno, "%s: cannot create: %s", path, strerror(errno));
		free(data);
		return fail(error, SMCORE_ERROR_RUNTIME, &err);
	}
	while (done < size) {
		ssize_t written = write(fd, data + done, size - done);

		if (written <= 0) {
			sm_error__set(&err, written < 0 ? errno : EIO, "%s: write failed: %s", path,
				      strerror(written < 0 ? errno : EIO));
			break;
		}
		done += (size_t)written;
	}
	free(data);
	if (close(fd) != 0 && done == size)
		sm_error__set(&err, errno, "%s: write failed: %s", path, strerror(errno));
	return err.code ? fail(error, SMCORE_ERROR_RUNTIME, &err) : 0;
}

SMCORE_API const char *smcore_machine_cmdline(struct smcore_machine *machine, char *buf, size_t size)
{
	const struct machine_config *config = &machine->config;
	const char *extra = config->cmdline;

	snprintf(buf, size, "%s", CORE_CMDLINE);
	device__cmdline(device_total(config), buf, size);
	if (extra && strlen(buf) + 1 + strlen(extra) < size)
		snprintf(buf + strlen(buf), size - strlen(buf), " %s", extra);
	return buf;
}

SMCORE_API void smcore_machine_stop(struct smcore_machine *machine)
{
	__atomic_store_n(&machine->stop_requested, 1, __ATOMIC_RELEASE);
	if (machine->vm_created)
		vm__request_stop(&machine->vm, VM_STOP_SIGNAL, "stopped by the host program");
}

SMCORE_API void smcore_machine_free(struct smcore_machine *machine)
{
	if (!machine)
		return;
	config__free(&machine->config);
	plugin_search__free(&machine->search);
	image_root__release(&machine->root);
	for (size_t i = 0; i < machine->root_section.count; i++) {
		free(machine->root_values[i].key);
		free(machine->root_values[i].value);
	}
	free(machine->root_section.name);
	free(machine->run_argv);
	free(machine->run_env);
	free(machine);
}

SMCORE_API int smcore_probe(const struct smcore_options *options, struct smcore_error *error)
{
	struct machine_config config = { 0 };
	struct plugin_search search;
	struct sm_plugin *accel = NULL;
	struct sm_error err = { 0 };
	const char *name = CONFIG_DEFAULT_ACCELERATOR;
	int ret;

	if (options->config_path) {
		ret = config__load(&config, options->config_path, options->overrides,
				   options->override_count, &err);
		if (ret)
			return fail(error, SMCORE_ERROR_CONFIG, &err);
		name = config.accelerator;
	}
	ret = plugin_search__init(&search, options->plugin_path, options->plugin_path_count,
				  config.plugin_dir);
	if (!ret) {
		ret = plugin__find(&search, name, SMCORE_PLUGIN_ACCELERATOR, &accel, &err);
		if (!ret)
			ret = probe_accelerator(accel, 0, &err);
		plugin__close(accel);
		plugin_search__free(&search);
	} else {
		sm_error__set(&err, -ret, "out of memory");
	}
	config__free(&config);
	return ret ? fail(error, SMCORE_ERROR_HOST, &err) : 0;
}

SMCORE_API int smcore_plugins_list(const struct smcore_options *options, FILE *out)
{
	struct plugin_search search;
	int found;

	if (plugin_search__init(&search, options->plugin_path, options->plugin_path_count, NULL))
		return -ENOMEM;
	found = plugin__list(&search, out);
	plugin_search__free(&search);
	return found;
}

SMCORE_API void smcore_set_log_level(int level)
{
	if (level < SMCORE_LOG_ERROR)
		level = SMCORE_LOG_ERROR;
	if (level > SMCORE_LOG_DEBUG)
		level = SMCORE_LOG_DEBUG;
	log__set_level(level);
}

