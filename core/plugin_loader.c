/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "plugin_loader.h"

#include <dirent.h>
#include <elf.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* The descriptor size of ABI 1.0; anything smaller cannot hold the fields we read. */
#define DESCRIPTOR_MIN_SIZE offsetof(struct smcore_plugin_descriptor, config_keys)

const char *plugin__kind_name(uint32_t kind)
{
	switch (kind) {
	case SMCORE_PLUGIN_ACCELERATOR:
		return "accelerator";
	case SMCORE_PLUGIN_DEVICE:
		return "device";
	case SMCORE_PLUGIN_CODEC:
		return "codec";
	case SMCORE_PLUGIN_NET:
		return "net";
	default:
		return NULL;
	}
}

static size_t ops_size_for_kind(uint32_t kind)
{
	switch (kind) {
	case SMCORE_PLUGIN_ACCELERATOR:
		return sizeof(struct smcore_accel_ops);
	case SMCORE_PLUGIN_DEVICE:
		return sizeof(struct smcore_device_ops);
	case SMCORE_PLUGIN_CODEC:
		return sizeof(struct smcore_codec_ops);
	case SMCORE_PLUGIN_NET:
		return sizeof(struct smcore_net_ops);
	default:
		return 0;
	}
}

#define REQUIRE(ops, field) { #field, (ops)->field != NULL }

struct required_callback {
	const char *name;
	int present;
};

/* Returns the name of the first required callback the plugin lacks, or NULL. */
static const char *missing_callback(const struct sm_plugin *plugin)
{
	const struct smcore_accel_ops *accel = &plugin->ops.accel;
	const struct smcore_device_ops *device = &plugin->ops.device;
	const struct smcore_codec_ops *codec = &plugin->ops.codec;
	const struct smcore_net_ops *net = &plugin->ops.net;
	struct required_callback accel_required[] = {
		REQUIRE(accel, create), REQUIRE(accel, map_memory), REQUIRE(accel, create_vcpu),
		REQUIRE(accel, set_regs), REQUIRE(accel, run_vcpu), REQUIRE(accel, kick_vcpu),
		REQUIRE(accel, irq_line), REQUIRE(accel, save_state), REQUIRE(accel, restore_state),
		REQUIRE(accel, destroy_vcpu), REQUIRE(accel, destroy),
	};
	struct required_callback device_required[] = {
		REQUIRE(device, realize), REQUIRE(device, queue_notify), REQUIRE(device, reset),
		REQUIRE(device, destroy),
	};
	struct required_callback codec_required[] = {
		REQUIRE(codec, encode), REQUIRE(codec, decode),
	};
	struct required_callback net_required[] = {
		REQUIRE(net, attach), REQUIRE(net, forward), REQUIRE(net, detach),
	};
	struct required_callback *list;
	size_t count;

	switch (plugin->desc.kind) {
	case SMCORE_PLUGIN_ACCELERATOR:
		list = accel_required;
		count = sizeof(accel_required) / sizeof(accel_required[0]);
		break;
	case SMCORE_PLUGIN_DEVICE:
		list = device_required;
		count = sizeof(device_required) / sizeof(device_required[0]);
		break;
	case SMCORE_PLUGIN_CODEC:
		list = codec_required;
		count = sizeof(codec_required) / sizeof(codec_required[0]);
		break;
	default:
		list = net_required;
		count = sizeof(net_required) / sizeof(net_required[0]);
		break;
	}
	for (size_t i = 0; i < count; i++) {
		if (!list[i].present)
			return list[i].name;
	}
	return NULL;
}

/*
 * Check what dlopen() would trust. The file must be regular, because a FIFO
 * would block the open. It must be an ELF shared object for this machine.
 * Its segments must lie inside the file: dlopen maps them, and touching a
 * page past the end of the file raises SIGBUS. Returns 0 or -errno with a
 * message.
 */
static int check_elf_file(const char *path, struct sm_error *err)
{
	Elf64_Ehdr ehdr;
	struct stat st;
	int fd, ret = 0;

	if (stat(path, &st) != 0)
		return sm_error__set(err, errno, "%s: cannot open plugin: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sm_error__set(err, ENOEXEC, "%s: not a shared object (not a regular file)", path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return sm_error__set(err, errno, "%s: cannot open plugin: %s", path, strerror(errno));

	if (pread(fd, &ehdr, sizeof(ehdr), 0) != (ssize_t)sizeof(ehdr) ||
	    memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
		ret = sm_error__set(err, ENOEXEC, "%s: not a shared object (no ELF header)", path);
		goto out;
	}
	if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_machine != EM_X86_64 || ehdr.e_type != ET_DYN) {
		ret = sm_error__set(err, ENOEXEC,
			"%s: not a shared object for this machine (ELF class %u, machine %u, type %u; expected 64-bit x86-64 ET_DYN)",
			path, ehdr.e_ident[EI_CLASS], ehdr.e_machine, ehdr.e_type);
		goto out;
	}
	if (ehdr.e_phentsize != sizeof(Elf64_Phdr)) {
		ret = sm_error__set(err, ENOEXEC, "%s: not a loadable shared object: invalid program header size %u",
				    path, ehdr.e_phentsize);
		goto out;
	}
	for (unsigned i = 0; i < ehdr.e_phnum; i++) {
		Elf64_Phdr phdr;

		if (pread(fd, &phdr, sizeof(phdr), (off_t)(ehdr.e_phoff + i * sizeof(phdr))) != (ssize_t)sizeof(phdr)) {
			ret = sm_error__set(err, ENOEXEC,
				"%s: not a loadable shared object: program header %u lies past the end of the file (truncated?)",
				path, i);
			goto out;
		}
		if (phdr.p_type == PT_LOAD &&
		    (phdr.p_offset > (uint64_t)st.st_size || phdr.p_filesz > (uint64_t)st.st_size - phdr.p_offset)) {
			ret = sm_error__set(err, ENOEXEC,
				"%s: not a loadable shared object: segment %u lies past the end of the file (%lld bytes; truncated?)",
				path, i, (long long)st.st_size);
			goto out;
		}
	}
out:
	close(fd);
	return ret;
}

static int check_descriptor(const struct smcore_plugin_descriptor *desc, const char *path,
			    struct sm_error *err)
{
	size_t known_ops;

	if (desc->abi_major != SMCORE_ABI_MAJOR)
		return sm_error__set(err, EPROTO,
			"%s: plugin ABI mismatch: the plugin was built for ABI %u.%u, this smcore supports ABI %u.%u; rebuild the plugin against this smcore's include/smcore/plugin.h",
			path, desc->abi_major, desc->abi_minor, SMCORE_ABI_MAJOR, SMCORE_ABI_MINOR);
	if (desc->size < DESCRIPTOR_MIN_SIZE)
		return sm_error__set(err, EPROTO,
			"%s: invalid plugin descriptor: size %u is smaller than the %zu bytes of ABI %u.0",
			path, desc->size, DESCRIPTOR_MIN_SIZE, SMCORE_ABI_MAJOR);
	if (desc->size > sizeof(*desc))
		return sm_error__set(err, EPROTO,
			"%s: plugin descriptor is %u bytes but this smcore knows only %zu (plugin ABI %u.%u, smcore ABI %u.%u); upgrade smcore or rebuild the plugin",
			path, desc->size, sizeof(*desc), desc->abi_major, desc->abi_minor,
			SMCORE_ABI_MAJOR, SMCORE_ABI_MINOR);

	known_ops = ops_size_for_kind(desc->kind);
	if (known_ops == 0)
		return sm_error__set(err, EPROTO,
			"%s: unknown plugin kind %u (known: 1 accelerator, 2 device, 3 codec, 4 net)",
			path, desc->kind);
	if (!desc->name || !desc->name[0])
		return sm_error__set(err, EPROTO, "%s: plugin descriptor has no name", path);
	if (!desc->ops || desc->ops_size == 0)
		return sm_error__set(err, EPROTO, "%s: plugin '%s' has no %s vtable",
				     path, desc->name, plugin__kind_name(desc->kind));
	if (desc->ops_size > known_ops)
		return sm_error__set(err, EPROTO,
			"%s: %s vtable of plugin '%s' is %u bytes but this smcore knows only %zu (plugin ABI %u.%u, smcore ABI %u.%u); upgrade smcore or rebuild the plugin",
			path, plugin__kind_name(desc->kind), desc->name, desc->ops_size, known_ops,
			desc->abi_major, desc->abi_minor, SMCORE_ABI_MAJOR, SMCORE_ABI_MINOR);
	return 0;
}

static int open_shared_object(const char *path, void **handle, struct sm_error *err)
{
	int ret = check_elf_file(path, err);

	if (ret)
		return ret;

	*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!*handle)
		return sm_error__set(err, ENOEXEC, "%s: not a loadable shared object: %s", path, dlerror());
	return 0;
}

int plugin__open(const char *path, struct sm_plugin **out, struct sm_error *err)
{
	const struct smcore_plugin_descriptor *desc;
	struct sm_plugin *plugin;
	void *handle = NULL;
	const char *missing;
	int ret;

	ret = open_shared_object(path, &handle, err);
	if (ret)
		return ret;

	desc = dlsym(handle, SMCORE_PLUGIN_DESCRIPTOR_SYMBOL);
	if (!desc) {
		ret = sm_error__set(err, ENOEXEC, "%s: not an smcore plugin: no '%s' symbol exported",
				    path, SMCORE_PLUGIN_DESCRIPTOR_SYMBOL);
		goto err_close;
	}
	ret = check_descriptor(desc, path, err);
	if (ret)
		goto err_close;

	plugin = calloc(1, sizeof(*plugin));
	if (!plugin) {
		ret = sm_error__set(err, ENOMEM, "%s: out of memory", path);
		goto err_close;
	}
	plugin->path = strdup(path);
	if (!plugin->path) {
		ret = sm_error__set(err, ENOMEM, "%s: out of memory", path);
		goto err_free;
	}
	plugin->handle = handle;
	memcpy(&plugin->desc, desc, desc->size);
	memcpy(&plugin->ops, desc->ops, desc->ops_size);

	missing = missing_callback(plugin);
	if (missing) {
		ret = sm_error__set(err, EPROTO, "%s: %s plugin '%s' lacks the required callback '%s'",
				    path, plugin__kind_name(desc->kind), desc->name, missing);
		goto err_free;
	}
	*out = plugin;
	return 0;

err_free:
	free(plugin->path);
	free(plugin);
err_close:
	dlclose(handle);
	return ret;
}

void plugin__close(struct sm_plugin *plugin)
{
	if (!plugin)
		return;
	dlclose(plugin->handle);
	free(plugin->path);
	free(plugin);
}
