// SPDX-License-Identifier: Apache-2.0
/*
 * smcore guest init, PID 1 of the guest.
 *
 * It mounts the kernel file systems, runs the workload described by
 * /smcore/run, reaps every orphan until the workload exits, reports the result
 * on the status serial port and reboots, which ends the run.
 *
 * /smcore/run is a sequence of NUL-terminated strings in KEY, VALUE pairs.
 * KEY is "argv" (repeated, in order, at least once), "env" (repeated,
 * "NAME=VALUE", overriding the defaults) or "cwd" (at most once).
 *
 * The status line on /dev/ttyS1 is "smcore-exit: exit N" or
 * "smcore-exit: signal N". Exit 127 means the program was not found, 126
 * that it could not be executed, and 125 that init could not start it at
 * all (missing or invalid /smcore/run, or an unusable cwd).
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
	const char *cwd; /* NULL when the file has no cwd entry */
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
	size_t offset = 0, argc = 0, envc = 0, cwdc = 0;

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
		} else if (strcmp(key, "cwd") == 0) {
			if (++cwdc > 1)
				return "cwd is given more than once";
		} else {
			return "unknown key (expected argv, env or cwd)";
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
		else
			spec->cwd = value;
	}
	spec->argc = argc;
	spec->envc = envc;
	return 0;
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

/* Replaces the environment the kernel passed to init with the defaults and
 * then the run file's entries, which override them. */
static int set_environment(const struct run_spec *spec)
{
	clearenv();
	if (setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1) < 0 ||
	    setenv("HOME", "/root", 1) < 0 || setenv("TERM", "linux", 1) < 0)
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
 * terminal, then executes the workload. Never returns. */
static void exec_workload(const struct run_spec *spec)
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

	execvp(spec->argv[0], spec->argv);
	log_error("cannot run '%s': %s", spec->argv[0], strerror(errno));
	_exit(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE);
}

/* Starts the workload and reaps every child until the workload exits.
 * Returns the workload's wait status. */
static int run_workload(const struct run_spec *spec)
{
	int status = 0;
	pid_t workload, pid;

	workload = fork();
	if (workload < 0) {
		log_error("cannot fork: %s", strerror(errno));
		return EXITED_WITH(EXIT_INIT_FAILED);
	}
	if (workload == 0)
		exec_workload(spec);

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

/* Prepares the process state the workload inherits. Returns 0, or -1 after
 * printing why the workload cannot start. */
static int prepare_workload(const struct run_spec *spec)
{
	const char *cwd = spec->cwd ? spec->cwd : "/";

	if (set_environment(spec) < 0)
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
	free_run_spec(&spec);
	return 0;
}

int main(int argc, char **argv)
{
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

	if (load_run_spec(RUN_FILE, &spec) < 0 || prepare_workload(&spec) < 0)
		status = EXITED_WITH(EXIT_INIT_FAILED);
	else
		status = run_workload(&spec);

	report_status(port, status);
	shut_down();
}
