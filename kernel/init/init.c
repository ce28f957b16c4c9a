// SPDX-License-Identifier: Apache-2.0
/*
 * smcore guest init, PID 1 of the guest.
 *
 * It mounts the kernel file systems, runs the workload described by
 * /smcore/run, reaps every orphan until the workload exits, reports the result
 * on the status serial port and reboots, which ends the run.
 *
 * /smcore/run is a sequence of NUL-terminated strings in KEY, VALUE pairs:
 *   argv       repeated, in order, at least once
 *   env        repeated, "NAME=VALUE", overriding the defaults
 *   cwd        at most once, default "/"
 *   root       at most once: the block device of a read-only root image, such
 *              as /dev/vda. Init mounts it under a tmpfs-backed overlay and
 *              makes that the root before it starts the workload.
 *   root_type  the file system of root, "squashfs" or "ext4"; required with
 *              root and invalid without it
 *   user       at most once: an OCI User string, "USER" or "USER:GROUP", each
 *              a name or a numeric id. Names are looked up in /etc/passwd and
 *              /etc/group of the root in use. Empty or missing means root.
 *
 * The status line on /dev/ttyS1 is "smcore-exit: exit N" or
 * "smcore-exit: signal N". Exit 127 means the program was not found, 126
 * that it could not be executed, and 125 that init could not start it at
 * all (missing or invalid /smcore/run, a root image that cannot be mounted,
 * an unknown user or group, or an unusable cwd).
 *
 * Run as a normal process with "--check FILE", it parses FILE as a run file,
 * prints what it found and exits 0, or 125 when the file is invalid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define RUN_FILE "/smcore/run"
#define STATUS_PORT "/dev/ttyS1"
#define CONSOLE "/dev/console"
#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"

/* Mount points for building the new root inside the initramfs. */
#define STAGING_DIR "/smcore/mnt"
#define IMAGE_DIR STAGING_DIR "/image"
#define WRITABLE_DIR STAGING_DIR "/writable"
#define UPPER_DIR WRITABLE_DIR "/upper"
#define WORK_DIR WRITABLE_DIR "/work"
#define NEW_ROOT_DIR STAGING_DIR "/root"

/* virtio-blk probes during kernel boot, so the device node normally exists
 * before init runs. The wait covers a slow probe without hanging forever. */
#define ROOT_DEVICE_TIMEOUT_MS 5000
#define ROOT_DEVICE_POLL_MS 10

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Larger than the kernel's limit for argv plus environment with the default
 * 8 MiB stack, so any run file that could be executed fits. */
#define RUN_FILE_MAX_BYTES (4u << 20)

#define EXIT_INIT_FAILED 125
#define EXIT_CANNOT_EXECUTE 126
#define EXIT_NOT_FOUND 127

/* The wait status of a process that exited with CODE. */
#define EXITED_WITH(code) ((code) << 8)

struct run_spec {
	char *data; /* the file contents; every string below points into it */
	char **argv; /* NULL-terminated */
	size_t argc;
	char **env; /* "NAME=VALUE" entries in file order */
	size_t envc;
	/* Each of these is NULL when the file lacks the key. */
	const char *cwd;
	const char *root;
	const char *root_type;
	const char *user;
};

/* The identity the workload runs as, resolved from the run file's user. */
struct workload_user {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* the list for setgroups(), primary group first */
	size_t group_count;
	char *home; /* the default HOME, from /etc/passwd when the user is in it */
};

static void log_error(const char *format, ...)
{
	va_list args;

	fputs("smcore-init: ", stderr);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
}

static int read_file(const char *path, char **data_out, size_t *size_out)
{
	size_t size = 0, capacity = 4096;
	char *data;
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	data = malloc(capacity);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}

	for (;;) {
		if (size == capacity) {
			char *grown = realloc(data, capacity * 2);

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			data = grown;
			capacity *= 2;
		}
		n = read(fd, data + size, capacity - size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		size += (size_t)n;
		if (size > RUN_FILE_MAX_BYTES) {
			err = -EFBIG;
			break;
		}
	}
	close(fd);

	if (err) {
		free(data);
		return err;
	}
	*data_out = data;
	*size_out = size;
	return 0;
}

/* Checks that DATA is a whole number of KEY, VALUE string pairs with known
 * keys and counts the argv and env entries. Returns NULL on success, else a
 * description of the first problem. */
static const char *validate_run_data(const char *data, size_t size, size_t *argc_out,
				     size_t *envc_out)
{
	static const char *const single_keys[] = { "cwd", "root", "root_type", "user" };
	size_t single_counts[sizeof(single_keys) / sizeof(single_keys[0])] = { 0 };
	size_t offset = 0, argc = 0, envc = 0;

	if (size == 0)
		return "the file is empty";
	if (data[size - 1] != '\0')
		return "the last string is not NUL-terminated";

	while (offset < size) {
		const char *key = data + offset;
		const char *value;

		offset += strlen(key) + 1;
		if (offset >= size)
			return "the last key has no value";
		value = data + offset;
		offset += strlen(value) + 1;

		if (strcmp(key, "argv") == 0) {
			if (argc == 0 && value[0] == '\0')
				return "argv[0] is empty";
			argc++;
		} else if (strcmp(key, "env") == 0) {
			const char *equals = strchr(value, '=');

			if (!equals || equals == value)
				return "an env value is not of the form NAME=VALUE";
			envc++;
		} else {
			size_t i = 0;

			while (i < sizeof(single_keys) / sizeof(single_keys[0]) &&
			       strcmp(key, single_keys[i]) != 0)
				i++;
			if (i == sizeof(single_keys) / sizeof(single_keys[0]))
				return "unknown key (expected argv, env, cwd, root, root_type or user)";
			if (++single_counts[i] > 1) {
				static char problem[64];

				snprintf(problem, sizeof(problem), "%s is given more than once", key);
				return problem;
			}
		}
	}

	if (argc == 0)
		return "there is no argv entry";
	*argc_out = argc;
	*envc_out = envc;
	return NULL;
}

static void free_run_spec(struct run_spec *spec)
{
	free(spec->argv);
	free(spec->env);
	free(spec->data);
	memset(spec, 0, sizeof(*spec));
}

/* Fills SPEC from the validated DATA, which SPEC then owns. */
static int fill_run_spec(struct run_spec *spec, char *data, size_t size, size_t argc, size_t envc)
{
	size_t offset = 0, argi = 0, envi = 0;

	spec->data = data;
	spec->argv = calloc(argc + 1, sizeof(*spec->argv));
	spec->env = calloc(envc + 1, sizeof(*spec->env));
	if (!spec->argv || !spec->env)
		return -ENOMEM;

	while (offset < size) {
		char *key = data + offset;
		char *value = key + strlen(key) + 1;

		offset = (size_t)(value - data) + strlen(value) + 1;
		if (strcmp(key, "argv") == 0)
			spec->argv[argi++] = value;
		else if (strcmp(key, "env") == 0)
			spec->env[envi++] = value;
		else if (strcmp(key, "cwd") == 0)
			spec->cwd = value;
		else if (strcmp(key, "root") == 0)
			spec->root = value;
		else if (strcmp(key, "root_type") == 0)
			spec->root_type = value;
		else
			spec->user = value;
	}
	spec->argc = argc;
	spec->envc = envc;
	return 0;
}

/* Checks the values of the root keys in the filled SPEC. Returns NULL when
 * they are valid, else a description of the problem. */
static const char *validate_root_keys(const struct run_spec *spec)
{
	if (!spec->root && spec->root_type)
		return "root_type is given without root";
	if (!spec->root)
		return NULL;
	if (spec->root[0] != '/')
		return "root is not an absolute path (expected a device such as /dev/vda)";
	if (!spec->root_type)
		return "root is given without root_type (expected squashfs or ext4)";
	if (strcmp(spec->root_type, "squashfs") != 0 && strcmp(spec->root_type, "ext4") != 0)
		return "root_type is not squashfs or ext4";
	return NULL;
}

/* Loads the run file at PATH into SPEC. Returns 0, or -1 after printing why
 * the file cannot be used. */
static int load_run_spec(const char *path, struct run_spec *spec)
{
	const char *problem;
	size_t size = 0, argc = 0, envc = 0;
	char *data = NULL;
	int err;

	memset(spec, 0, sizeof(*spec));
	err = read_file(path, &data, &size);
	if (err == -EFBIG) {
		log_error("%s: invalid: larger than %u bytes", path, RUN_FILE_MAX_BYTES);
		return -1;
	}
	if (err) {
		log_error("cannot read %s: %s", path, strerror(-err));
		return -1;
	}

	problem = validate_run_data(data, size, &argc, &envc);
	if (problem) {
		log_error("%s: invalid: %s", path, problem);
		free(data);
		return -1;
	}

	if (fill_run_spec(spec, data, size, argc, envc) < 0) {
		log_error("%s: %s", path, strerror(ENOMEM));
		free_run_spec(spec);
		return -1;
	}

	problem = validate_root_keys(spec);
	if (problem) {
		log_error("%s: invalid: %s", path, problem);
		free_run_spec(spec);
		return -1;
	}
	return 0;
}

static void mount_one(const char *source, const char *target, const char *type,
		      unsigned long flags, const char *options)
{
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		log_error("cannot create %s: %s", target, strerror(errno));
	if (mount(source, target, type, flags, options) < 0 && errno != EBUSY)
		log_error("cannot mount %s on %s: %s", type, target, strerror(errno));
}

static void mount_kernel_filesystems(void)
{
	const unsigned long nosuid_nodev_noexec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	mount_one("proc", "/proc", "proc", nosuid_nodev_noexec, NULL);
	mount_one("sysfs", "/sys", "sysfs", nosuid_nodev_noexec, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "gid=5,mode=0620,ptmxmode=0666");
	mount_one("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");

	/* Shells and many programs expect these links that udev would add. */
	symlink("/proc/self/fd", "/dev/fd");
	symlink("/proc/self/fd/0", "/dev/stdin");
	symlink("/proc/self/fd/1", "/dev/stdout");
	symlink("/proc/self/fd/2", "/dev/stderr");
}

static int make_directory(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		log_error("cannot create directory %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static long long monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Waits up to ROOT_DEVICE_TIMEOUT_MS for devtmpfs to create the block device
 * node PATH. */
static int wait_for_block_device(const char *path)
{
	const struct timespec pause = { .tv_nsec = ROOT_DEVICE_POLL_MS * 1000000L };
	const long long deadline = monotonic_ms() + ROOT_DEVICE_TIMEOUT_MS;
	struct stat st;

	for (;;) {
		if (stat(path, &st) == 0) {
			if (S_ISBLK(st.st_mode))
				return 0;
			log_error("root device %s is not a block device", path);
			return -1;
		}
		if (errno != ENOENT) {
			log_error("cannot access root device %s: %s", path, strerror(errno));
			return -1;
		}
		if (monotonic_ms() >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	log_error("root device %s did not appear within %d s; "
		  "check that the root image is attached as a virtio-blk device",
		  path, ROOT_DEVICE_TIMEOUT_MS / 1000);
	return -1;
}

/* Mounts the image SPEC->root read-only with a writable tmpfs overlay on top
 * at NEW_ROOT_DIR. */
static int mount_overlay_root(const struct run_spec *spec)
{
	static const char overlay_options[] =
		"lowerdir=" IMAGE_DIR ",upperdir=" UPPER_DIR ",workdir=" WORK_DIR;
	struct stat image_root;

	if (make_directory(STAGING_DIR, 0700) < 0 || make_directory(IMAGE_DIR, 0755) < 0 ||
	    make_directory(WRITABLE_DIR, 0755) < 0 || make_directory(NEW_ROOT_DIR, 0755) < 0)
		return -1;
	if (wait_for_block_device(spec->root) < 0)
		return -1;
	if (mount(spec->root, IMAGE_DIR, spec->root_type, MS_RDONLY, NULL) < 0) {
		log_error("cannot mount root image %s as %s (read-only): %s", spec->root,
			  spec->root_type, strerror(errno));
		return -1;
	}

	/* The writable layer lives in guest memory. size=50% (also the tmpfs
	 * default) caps it at half the guest RAM, so a workload that writes
	 * too much gets ENOSPC instead of exhausting the guest's memory. */
	if (mount("tmpfs", WRITABLE_DIR, "tmpfs", 0, "mode=0755,size=50%") < 0) {
		log_error("cannot mount tmpfs on %s for the writable layer: %s", WRITABLE_DIR,
			  strerror(errno));
		return -1;
	}
	if (make_directory(UPPER_DIR, 0755) < 0 || make_directory(WORK_DIR, 0755) < 0)
		return -1;

	/* The overlay's root directory takes its owner and mode from the upper
	 * directory, so copy them from the image's root. */
	if (stat(IMAGE_DIR, &image_root) < 0 ||
	    chown(UPPER_DIR, image_root.st_uid, image_root.st_gid) < 0 ||
	    chmod(UPPER_DIR, image_root.st_mode & 07777) < 0)
		log_error("cannot copy the owner and mode of the image's root directory: %s",
			  strerror(errno));

	if (mount("overlay", NEW_ROOT_DIR, "overlay", 0, overlay_options) < 0) {
		log_error("cannot mount overlay on %s (%s): %s", NEW_ROOT_DIR, overlay_options,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* Moves the kernel file systems that init mounted into the new root, creating
 * /dev, /proc and /sys there when the image lacks them. The image keeps its
 * own /tmp and /run on the writable overlay, as a container would: a tmpfs
 * there would hide their contents and add a second size limit. */
static int move_kernel_filesystems(void)
{
	static const struct {
		const char *path;
		mode_t mode;
	} mounts[] = {
		{ "/dev", 0755 }, { "/proc", 0555 }, { "/sys", 0555 },
	};
	char target[sizeof(NEW_ROOT_DIR) + 16];
	struct stat st;

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		snprintf(target, sizeof(target), "%s%s", NEW_ROOT_DIR, mounts[i].path);

		/* lstat: a symbolic link here would resolve in the initramfs. */
		if (lstat(target, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				log_error("the root image's %s is not a directory", mounts[i].path);
				return -1;
			}
		} else if (make_directory(target, mounts[i].mode) < 0) {
			return -1;
		}

		if (mount(mounts[i].path, target, NULL, MS_MOVE, NULL) < 0) {
			log_error("cannot move the %s mount into the new root: %s", mounts[i].path,
				  strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Makes NEW_ROOT_DIR the root directory. The initramfs root cannot be
 * unmounted or given to pivot_root(), so the new root is moved over "/" and
 * entered with chroot(). Open descriptors such as the console and the
 * status port stay valid. */
static int enter_new_root(void)
{
	if (chdir(NEW_ROOT_DIR) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0) {
		log_error("cannot switch the root to %s: %s", NEW_ROOT_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

/* Replaces the initramfs root with the root image that SPEC names. Returns 0,
 * or -1 after printing what failed. */
static int switch_to_root_image(const struct run_spec *spec)
{
	if (mount_overlay_root(spec) < 0 || move_kernel_filesystems() < 0)
		return -1;
	return enter_new_root();
}

/* Turns off the tty's output processing (ONLCR adds a \r before every \n), so
 * the workload's bytes reach the host's standard output unchanged. */
static void disable_output_processing(int fd)
{
	struct termios tio;

	if (tcgetattr(fd, &tio) != 0)
		return;
	tio.c_oflag &= ~(tcflag_t)OPOST;
	if (tcsetattr(fd, TCSANOW, &tio) != 0)
		log_error("cannot turn off output processing on %s: %s", CONSOLE, strerror(errno));
}

/* Points stdin, stdout and stderr at the console of the freshly mounted
 * devtmpfs. */
static void open_console(void)
{
	int fd = open(CONSOLE, O_RDWR | O_NOCTTY);

	if (fd < 0) {
		log_error("cannot open %s: %s", CONSOLE, strerror(errno));
		return;
	}
	for (int target = 0; target <= 2; target++) {
		if (fd != target)
			dup2(fd, target);
	}
	if (fd > 2)
		close(fd);
	disable_output_processing(STDOUT_FILENO);
}

/* Opens the status port in raw mode. The non-blocking open and CLOCAL keep
 * the open and later writes from waiting for a modem carrier signal. */
static int open_status_port(void)
{
	struct termios tio;
	int fd;

	fd = open(STATUS_PORT, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot open status port %s: %s", STATUS_PORT, strerror(errno));
		return -1;
	}
	if (tcgetattr(fd, &tio) == 0) {
		cfmakeraw(&tio);
		tio.c_cflag |= CLOCAL;
		if (tcsetattr(fd, TCSANOW, &tio) < 0)
			log_error("cannot set %s to raw mode: %s", STATUS_PORT, strerror(errno));
	} else {
		log_error("cannot read the settings of %s: %s", STATUS_PORT, strerror(errno));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* Waits until the console's output queue is empty, because the host stops
 * copying the console once the status arrives. The wait is bounded, unlike
 * tcdrain(), so a stuck console delays the status by at most 5 s. */
static void drain_console(void)
{
	struct timespec pause = { .tv_nsec = 1000000 };
	int queued;

	for (int waited_ms = 0; waited_ms < 5000; waited_ms++) {
		if (ioctl(STDOUT_FILENO, TIOCOUTQ, &queued) != 0 || queued <= 0)
			return;
		nanosleep(&pause, NULL);
	}
	log_error("the console did not drain within 5 s; reporting the exit status anyway");
}

static void report_status(int port, int wait_status)
{
	char line[64];
	int length, written = 0;

	if (WIFSIGNALED(wait_status))
		length = snprintf(line, sizeof(line), "smcore-exit: signal %d\n",
				  WTERMSIG(wait_status));
	else
		length = snprintf(line, sizeof(line), "smcore-exit: exit %d\n",
				  WEXITSTATUS(wait_status));
	if (port < 0) {
		log_error("status port unavailable, workload result: %.*s", length - 1, line);
		return;
	}
	drain_console();

	while (written < length) {
		ssize_t n = write(port, line + written, (size_t)(length - written));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("cannot write to %s: %s", STATUS_PORT, strerror(errno));
			return;
		}
		written += (int)n;
	}
	tcdrain(port);
}

/* Parses TEXT as a decimal user or group id. Returns 1 and stores the id, 0
 * when TEXT is not all digits (so it is a name), or -1 when it is out of
 * range. The id 4294967295 is (uid_t)-1, which setuid() cannot take. */
static int parse_id(const char *text, unsigned int *id_out)
{
	unsigned long long value = 0;

	if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text))
		return 0;
	for (const char *digit = text; *digit; digit++) {
		value = value * 10 + (unsigned int)(*digit - '0');
		if (value >= 0xffffffffull)
			return -1;
	}
	*id_out = (unsigned int)value;
	return 1;
}

/* Splits LINE in place at each ':' into at most MAX fields, after dropping
 * the line end. Returns the number of fields. */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t count = 0;

	line[strcspn(line, "\n")] = '\0';
	while (count < max) {
		fields[count++] = line;
		line = strchr(line, ':');
		if (!line)
			break;
		*line++ = '\0';
	}
	return count;
}

struct passwd_entry {
	char *name;
	uid_t uid;
	gid_t gid;
	char *home;
};

#define PASSWD_FIELD_COUNT 7
#define GROUP_FIELD_COUNT 4

/* Splits each line of PATH into at most MAX fields (MAX <= PASSWD_FIELD_COUNT)
 * and calls VISIT with them and CONTEXT until it returns nonzero. Returns that
 * value, 0 at the end of the file or when the file does not exist, or a
 * negative errno when the file cannot be read. */
static int scan_fields(const char *path, size_t max,
		       int (*visit)(char **fields, size_t count, void *context), void *context)
{
	FILE *file = fopen(path, "re");
	char *line = NULL, *fields[PASSWD_FIELD_COUNT];
	size_t capacity = 0;
	int ret = 0;

	if (!file)
		return errno == ENOENT ? 0 : -errno;
	while (ret == 0 && getline(&line, &capacity, file) >= 0)
		ret = visit(fields, split_fields(line, fields, max), context);
	if (ret == 0 && ferror(file))
		ret = -EIO;
	free(line);
	fclose(file);
	return ret;
}

struct passwd_query {
	const char *name;
	uid_t uid;
	struct passwd_entry *entry;
};

static int match_passwd_line(char **fields, size_t count, void *context)
{
	struct passwd_query *query = context;
	struct passwd_entry *entry = query->entry;
	unsigned int entry_uid, entry_gid;

	if (count < 6 || parse_id(fields[2], &entry_uid) != 1 || parse_id(fields[3], &entry_gid) != 1)
		return 0;
	if (query->name ? strcmp(fields[0], query->name) != 0 : entry_uid != query->uid)
		return 0;

	entry->name = strdup(fields[0]);
	entry->home = strdup(fields[5][0] ? fields[5] : "/");
	entry->uid = entry_uid;
	entry->gid = entry_gid;
	return entry->name && entry->home ? 1 : -ENOMEM;
}

/* Finds the PASSWD_FILE entry named NAME or, when NAME is NULL, the first one
 * with UID. Returns 1 and fills ENTRY (the caller frees its strings), 0 when
 * no entry matches or the file does not exist, or a negative errno when the
 * file cannot be read. Lines that are not NAME:PASSWORD:UID:GID:GECOS:HOME
 * with numeric ids are skipped. */
static int find_passwd_entry(const char *name, uid_t uid, struct passwd_entry *entry)
{
	struct passwd_query query = { .name = name, .uid = uid, .entry = entry };

	return scan_fields(PASSWD_FILE, PASSWD_FIELD_COUNT, match_passwd_line, &query);
}

struct group_query {
	const char *name;
	gid_t *gid_out;
};

static int match_group_line(char **fields, size_t count, void *context)
{
	struct group_query *query = context;
	unsigned int gid;

	if (count < 3 || parse_id(fields[2], &gid) != 1 || strcmp(fields[0], query->name) != 0)
		return 0;
	*query->gid_out = gid;
	return 1;
}

/* Finds the gid of the GROUP_FILE group NAME. Returns 1 and stores it, 0
 * when no group matches or the file does not exist, or a negative errno. */
static int find_group_id(const char *name, gid_t *gid_out)
{
	struct group_query query = { .name = name, .gid_out = gid_out };

	return scan_fields(GROUP_FILE, GROUP_FIELD_COUNT, match_group_line, &query);
}

static int add_group(struct workload_user *user, gid_t gid)
{
	gid_t *grown;

	for (size_t i = 0; i < user->group_count; i++) {
		if (user->groups[i] == gid)
			return 0;
	}
	grown = realloc(user->groups, (user->group_count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	user->groups = grown;
	user->groups[user->group_count++] = gid;
	return 0;
}

struct member_query {
	struct workload_user *user;
	const char *member;
};

static int add_group_if_member(char **fields, size_t count, void *context)
{
	struct member_query *query = context;
	unsigned int gid;
	char *members, *name;

	if (count < 4 || parse_id(fields[2], &gid) != 1)
		return 0;
	members = fields[3];
	while ((name = strsep(&members, ",")) != NULL) {
		if (strcmp(name, query->member) == 0)
			return add_group(query->user, gid);
	}
	return 0;
}

/* Adds to USER's groups every GROUP_FILE group whose member list contains
 * MEMBER. Returns 0 (also when the file does not exist) or a negative errno. */
static int add_member_groups(struct workload_user *user, const char *member)
{
	struct member_query query = { .user = user, .member = member };

	return scan_fields(GROUP_FILE, GROUP_FIELD_COUNT, add_group_if_member, &query);
}

static void free_workload_user(struct workload_user *user)
{
	free(user->groups);
	free(user->home);
	memset(user, 0, sizeof(*user));
}

/* Sets USER's uid, and its gid and home from PASSWD_FILE, from the user part
 * of the User string. ENTRY receives the passwd entry when there is one. */
static int resolve_user_part(const char *name, struct workload_user *user,
			     struct passwd_entry *entry)
{
	unsigned int uid = 0;
	int found, numeric = parse_id(name, &uid);

	if (numeric < 0) {
		log_error("user id '%s' is out of range", name);
		return -1;
	}
	found = find_passwd_entry(numeric ? NULL : name, uid, entry);
	if (found < 0) {
		log_error("cannot read %s to look up user '%s': %s", PASSWD_FILE, name,
			  strerror(-found));
		return -1;
	}
	if (!found && !numeric) {
		log_error("user '%s' not found in %s", name, PASSWD_FILE);
		return -1;
	}

	/* A numeric uid without a passwd entry gets gid 0 and HOME=/, or
	 * HOME=/root for uid 0. */
	if (found) {
		user->uid = entry->uid;
		user->gid = entry->gid;
		user->home = strdup(entry->home);
	} else {
		user->uid = uid;
		user->gid = 0;
		user->home = strdup(uid == 0 ? "/root" : "/");
	}
	if (!user->home) {
		log_error("cannot resolve user '%s': %s", name, strerror(ENOMEM));
		return -1;
	}
	return 0;
}

static int resolve_group_part(const char *name, struct workload_user *user)
{
	unsigned int gid = 0;
	int found, numeric = parse_id(name, &gid);

	if (numeric < 0) {
		log_error("group id '%s' is out of range", name);
		return -1;
	}
	if (numeric) {
		user->gid = gid;
		return 0;
	}

	found = find_group_id(name, &user->gid);
	if (found < 0) {
		log_error("cannot read %s to look up group '%s': %s", GROUP_FILE, name,
			  strerror(-found));
		return -1;
	}
	if (!found) {
		log_error("group '%s' not found in %s", name, GROUP_FILE);
		return -1;
	}
	return 0;
}

/* Resolves the OCI User string TEXT ("USER" or "USER:GROUP", each a name or a
 * numeric id; NULL or empty means root) against /etc/passwd and /etc/group
 * of the current root. Without a group, the gid is the passwd entry's and the
 * supplementary groups are the primary group plus every group that lists
 * the user as a member. Returns 0, or -1 after printing why. */
static int resolve_user(const char *text, struct workload_user *user)
{
	struct passwd_entry entry = { 0 };
	char *user_part = strdup(text && text[0] ? text : "0");
	char *group_part;
	int ret = -1, err;

	memset(user, 0, sizeof(*user));
	if (!user_part) {
		log_error("cannot resolve user '%s': %s", text ? text : "", strerror(ENOMEM));
		return -1;
	}
	group_part = strchr(user_part, ':');
	if (group_part)
		*group_part++ = '\0';
	if (group_part && group_part[0] == '\0')
		group_part = NULL;

	if (resolve_user_part(user_part[0] ? user_part : "0", user, &entry) < 0)
		goto out;
	if (group_part && resolve_group_part(group_part, user) < 0)
		goto out;

	err = add_group(user, user->gid);
	if (!err && !group_part && entry.name)
		err = add_member_groups(user, entry.name);
	if (err) {
		log_error("cannot read the supplementary groups of user '%s' from %s: %s",
			  text ? text : "", GROUP_FILE, strerror(-err));
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		free_workload_user(user);
	free(entry.name);
	free(entry.home);
	free(user_part);
	return ret;
}

/* Switches the calling process to USER: groups first, uid last, because
 * after setuid() to a non-root uid the other calls are not permitted.
 * Returns 0, or -1 after printing which call failed. */
static int become_user(const struct workload_user *user)
{
	if (setgroups(user->group_count, user->groups) < 0) {
		log_error("cannot set the supplementary groups of uid %u: %s", (unsigned int)user->uid,
			  strerror(errno));
		return -1;
	}
	if (setgid(user->gid) < 0) {
		log_error("cannot set gid %u: %s", (unsigned int)user->gid, strerror(errno));
		return -1;
	}
	if (setuid(user->uid) < 0) {
		log_error("cannot set uid %u: %s", (unsigned int)user->uid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Replaces the environment the kernel passed to init with the defaults (HOME
 * is the user's) and then the run file's entries, which override them. */
static int set_environment(const struct run_spec *spec, const struct workload_user *user)
{
	clearenv();
	if (setenv("PATH", DEFAULT_PATH, 1) < 0 || setenv("HOME", user->home, 1) < 0 ||
	    setenv("TERM", "linux", 1) < 0)
		return -1;

	for (size_t i = 0; i < spec->envc; i++) {
		char *entry = spec->env[i];
		char *equals = strchr(entry, '=');
		int result;

		*equals = '\0';
		result = setenv(entry, equals + 1, 1);
		*equals = '=';
		if (result < 0) {
			log_error("cannot set environment variable '%s': %s", entry,
				  strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Runs in the forked child: starts a session with the console as controlling
 * terminal, switches to the workload's user, then executes the workload.
 * Never returns. */
static void exec_workload(const struct run_spec *spec, const struct workload_user *user)
{
	setsid();
	/* Shells disable job control without a controlling terminal. That is
	 * the only cost of a failure here, so it is not reported. */
	ioctl(STDIN_FILENO, TIOCSCTTY, 1);

	/* The host does not forward its standard input yet, so a workload that
	 * reads stdin gets end-of-file instead of waiting forever. */
	int null_fd = open("/dev/null", O_RDONLY);

	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		if (null_fd != STDIN_FILENO)
			close(null_fd);
	}

	if (become_user(user) < 0)
		_exit(EXIT_INIT_FAILED);
	execvp(spec->argv[0], spec->argv);
	log_error("cannot run '%s': %s", spec->argv[0], strerror(errno));
	_exit(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE);
}

/* Starts the workload and reaps every child until the workload exits.
 * Returns the workload's wait status. */
static int run_workload(const struct run_spec *spec, const struct workload_user *user)
{
	int status = 0;
	pid_t workload, pid;

	workload = fork();
	if (workload < 0) {
		log_error("cannot fork: %s", strerror(errno));
		return EXITED_WITH(EXIT_INIT_FAILED);
	}
	if (workload == 0)
		exec_workload(spec, user);

	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid == workload)
			return status;
		if (pid < 0 && errno != EINTR) {
			log_error("waitpid failed: %s", strerror(errno));
			return EXITED_WITH(EXIT_INIT_FAILED);
		}
	}
}

/* Makes a non-root USER the owner of the console, as login does for a
 * terminal, so the workload can reopen it through /dev/stdout or
 * /dev/stderr. The inherited descriptors work without this. */
static void give_console_to(const struct workload_user *user)
{
	if (user->uid != 0 && fchown(STDOUT_FILENO, user->uid, user->gid) < 0)
		log_error("cannot give the console to uid %u: %s", (unsigned int)user->uid,
			  strerror(errno));
}

/* Prepares the process state the workload inherits: the root image, the
 * user, the environment and the working directory. Returns 0, or -1 after
 * printing why the workload cannot start. */
static int prepare_workload(const struct run_spec *spec, struct workload_user *user)
{
	const char *cwd = spec->cwd ? spec->cwd : "/";

	if (spec->root && switch_to_root_image(spec) < 0)
		return -1;
	if (resolve_user(spec->user, user) < 0)
		return -1;
	give_console_to(user);
	if (set_environment(spec, user) < 0)
		return -1;
	if (chdir(cwd) < 0) {
		log_error("cannot change directory to '%s': %s", cwd, strerror(errno));
		return -1;
	}
	return 0;
}

static void shut_down(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	/* Only reached if reboot failed. PID 1 exiting makes the kernel panic,
	 * and with panic=-1 on the command line that reboots as well. */
	log_error("reboot failed: %s", strerror(errno));
	_exit(1);
}

static int check_run_file(const char *path)
{
	struct run_spec spec;

	if (load_run_spec(path, &spec) < 0)
		return EXIT_INIT_FAILED;
	for (size_t i = 0; i < spec.argc; i++)
		printf("argv[%zu]=%s\n", i, spec.argv[i]);
	for (size_t i = 0; i < spec.envc; i++)
		printf("env=%s\n", spec.env[i]);
	printf("cwd=%s\n", spec.cwd ? spec.cwd : "/");
	if (spec.root)
		printf("root=%s\nroot_type=%s\n", spec.root, spec.root_type);
	printf("user=%s\n", spec.user && spec.user[0] ? spec.user : "0");
	free_run_spec(&spec);
	return 0;
}

int main(int argc, char **argv)
{
	struct workload_user user = { 0 };
	struct run_spec spec;
	int port, status;

	if (getpid() != 1) {
		if (argc == 3 && strcmp(argv[1], "--check") == 0)
			return check_run_file(argv[2]);
		fprintf(stderr, "usage: %s --check RUN_FILE (as PID 1 it takes no arguments)\n",
			argv[0]);
		return 2;
	}

	mount_kernel_filesystems();
	open_console();
	port = open_status_port();

	if (load_run_spec(RUN_FILE, &spec) < 0 || prepare_workload(&spec, &user) < 0)
		status = EXITED_WITH(EXIT_INIT_FAILED);
	else
		status = run_workload(&spec, &user);

	report_status(port, status);
	shut_down();
}
