// SPDX-License-Identifier: Apache-2.0
/*
 * Run one command and measure it from the moment it is started:
 *
 *   measure [-o FILE] [-e FILE] [-m TEXT] [-t SECONDS] [-T] -- COMMAND [ARG]...
 *
 * The command's standard output is read through a pipe. The time of its
 * first byte, the time the process exits (its pidfd becomes readable), its
 * peak resident set size (ru_maxrss from wait4) and its exit status are
 * printed as one line of KEY=VALUE fields on standard output:
 *
 *   first_byte_ms=812.4 match_ms=901.7 exit_ms=4790.2 max_rss_kib=21344 status=exit:0 output_bytes=52
 *
 * first_byte_ms is "none" when the command wrote nothing, and match_ms when
 * TEXT never appeared or -m was not given. status is "exit:N", "signal:N" or
 * "timeout" (the command was killed with SIGKILL). Times use CLOCK_MONOTONIC
 * and count from just before fork(), so max_rss_kib also covers the forked
 * copy of measure itself before exec (about 1 MiB).
 *
 * Options:
 *   -o FILE     copy the command's standard output to FILE
 *   -e FILE     send the command's standard error to FILE instead of ours
 *   -m TEXT     also report when TEXT first appears in the output (match_ms)
 *   -t SECONDS  kill the command after SECONDS (default 120)
 *   -T          also copy the output to our standard error, each line
 *               prefixed with the time its first byte arrived
 *
 * Exit status: 0 when the command ran (whatever its own status), 2 for a
 * usage error, 1 when it could not be started or measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long output is still read after the command exited, for bytes that a
 * child it left behind may still write to the inherited pipe. */
#define DRAIN_AFTER_EXIT_MS 1000

#define MATCH_TEXT_MAX 256

struct options {
	const char *output_path;
	const char *error_path;
	const char *match_text;
	double timeout_ms;
	bool timestamp_lines;
	char **argv;
};

struct measurement {
	double first_byte_ms; /* negative until the first byte arrives */
	double match_ms; /* negative until the match text appears */
	double exit_ms;
	long max_rss_kib;
	int wait_status;
	bool timed_out;
	unsigned long long output_bytes;
};

struct output_sink {
	FILE *copy; /* NULL when the output is not kept */
	bool timestamp_lines;
	bool at_line_start;
	const char *match_text; /* NULL when nothing is searched for */
	/* The end of the output so far, long enough to find the match text
	 * when it spans two reads. */
	char tail[2 * MATCH_TEXT_MAX];
	size_t tail_length;
};

static double now_ms(const struct timespec *start)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - start->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - start->tv_nsec) / 1e6;
}

static void usage(void)
{
	fputs("usage: measure [-o FILE] [-e FILE] [-m TEXT] [-t SECONDS] [-T] -- COMMAND [ARG]...\n",
	      stderr);
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *options)
{
	char *end;
	int opt;

	memset(options, 0, sizeof(*options));
	options->timeout_ms = 120e3;
	while ((opt = getopt(argc, argv, "+o:e:m:t:T")) != -1) {
		switch (opt) {
		case 'o':
			options->output_path = optarg;
			break;
		case 'e':
			options->error_path = optarg;
			break;
		case 'm':
			options->match_text = optarg;
			if (strlen(optarg) == 0 || strlen(optarg) > MATCH_TEXT_MAX) {
				fprintf(stderr, "measure: -m TEXT must have 1 to %d bytes\n",
					MATCH_TEXT_MAX);
				exit(2);
			}
			break;
		case 't':
			options->timeout_ms = strtod(optarg, &end) * 1e3;
			if (*end != '\0' || end == optarg || options->timeout_ms <= 0) {
				fprintf(stderr, "measure: invalid timeout '%s' (expected seconds > 0)\n",
					optarg);
				exit(2);
			}
			break;
		case 'T':
			options->timestamp_lines = true;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	options->argv = argv + optind;
}

/* Runs in the forked child: wires up the standard streams and executes the
 * command. Never returns. */
static void exec_command(const struct options *options, int pipe_write)
{
	int null_fd = open("/dev/null", O_RDONLY);

	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
	    dup2(pipe_write, STDOUT_FILENO) < 0) {
		perror("measure: cannot set up the standard streams");
		_exit(127);
	}
	if (options->error_path) {
		int err_fd = open(options->error_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (err_fd < 0 || dup2(err_fd, STDERR_FILENO) < 0) {
			fprintf(stderr, "measure: cannot open %s: %s\n", options->error_path,
				strerror(errno));
			_exit(127);
		}
	}
	execvp(options->argv[0], options->argv);
	fprintf(stderr, "measure: cannot run %s: %s\n", options->argv[0], strerror(errno));
	_exit(127);
}

/* Returns true once the match text is in the output seen so far. */
static bool sink_find_match(struct output_sink *sink, const char *data, size_t size)
{
	size_t keep = strlen(sink->match_text) - 1;

	while (size > 0) {
		size_t room = sizeof(sink->tail) - sink->tail_length;
		size_t n = size < room ? size : room;

		memcpy(sink->tail + sink->tail_length, data, n);
		sink->tail_length += n;
		data += n;
		size -= n;
		if (memmem(sink->tail, sink->tail_length, sink->match_text,
			   strlen(sink->match_text)))
			return true;
		if (sink->tail_length > keep) {
			memmove(sink->tail, sink->tail + sink->tail_length - keep, keep);
			sink->tail_length = keep;
		}
	}
	return false;
}

static void sink_write(struct output_sink *sink, const char *data, size_t size, double time_ms)
{
	if (sink->copy)
		fwrite(data, 1, size, sink->copy);
	if (!sink->timestamp_lines)
		return;

	for (size_t i = 0; i < size; i++) {
		if (sink->at_line_start)
			fprintf(stderr, "[%9.1f ms] ", time_ms);
		fputc(data[i], stderr);
		sink->at_line_start = data[i] == '\n';
	}
}

/* Reads what the pipe has. Returns false at end of file or on error. */
static bool read_output(int fd, struct output_sink *sink, struct measurement *result,
			const struct timespec *start)
{
	char buffer[4096];
	ssize_t n;
	double t;

	n = read(fd, buffer, sizeof(buffer));
	t = now_ms(start);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;

	if (result->first_byte_ms < 0)
		result->first_byte_ms = t;
	result->output_bytes += (unsigned long long)n;
	if (sink->match_text && result->match_ms < 0 && sink_find_match(sink, buffer, (size_t)n))
		result->match_ms = t;
	sink_write(sink, buffer, (size_t)n, t);
	return true;
}

static int reap(pid_t pid, struct measurement *result, const struct timespec *start)
{
	struct rusage usage;

	if (wait4(pid, &result->wait_status, 0, &usage) < 0) {
		perror("measure: wait4 failed");
		return -1;
	}
	result->exit_ms = now_ms(start);
	result->max_rss_kib = usage.ru_maxrss;
	return 0;
}

/* Waits for the command to exit while reading its output, and kills it at
 * the timeout. Returns 0, or -1 when waiting failed. */
static int watch_command(pid_t pid, int pidfd, int pipe_read, const struct options *options,
			 struct output_sink *sink, struct measurement *result,
			 const struct timespec *start)
{
	bool exited = false, pipe_open = true;

	while (!exited || pipe_open) {
		struct pollfd fds[2] = {
			{ .fd = pipe_open ? pipe_read : -1, .events = POLLIN },
			{ .fd = exited ? -1 : pidfd, .events = POLLIN },
		};
		double deadline = exited ? result->exit_ms + DRAIN_AFTER_EXIT_MS
					 : options->timeout_ms;
		double left = deadline - now_ms(start);
		int ready;

		if (left <= 0) {
			if (exited)
				break;
			kill(pid, SIGKILL);
			result->timed_out = true;
			left = 1000;
		}
		ready = poll(fds, 2, (int)left + 1);
		if (ready < 0 && errno != EINTR) {
			perror("measure: poll failed");
			return -1;
		}
		if (ready <= 0)
			continue;

		if (fds[0].revents)
			pipe_open = read_output(pipe_read, sink, result, start);
		if (fds[1].revents) {
			if (reap(pid, result, start) < 0)
				return -1;
			exited = true;
		}
	}
	return 0;
}

static void print_result(const struct measurement *result)
{
	if (result->first_byte_ms < 0)
		printf("first_byte_ms=none");
	else
		printf("first_byte_ms=%.1f", result->first_byte_ms);
	if (result->match_ms < 0)
		printf(" match_ms=none");
	else
		printf(" match_ms=%.1f", result->match_ms);
	printf(" exit_ms=%.1f max_rss_kib=%ld", result->exit_ms, result->max_rss_kib);

	if (result->timed_out)
		printf(" status=timeout");
	else if (WIFSIGNALED(result->wait_status))
		printf(" status=signal:%d", WTERMSIG(result->wait_status));
	else
		printf(" status=exit:%d", WEXITSTATUS(result->wait_status));
	printf(" output_bytes=%llu\n", result->output_bytes);
}

int main(int argc, char **argv)
{
	struct measurement result = { .first_byte_ms = -1, .match_ms = -1 };
	struct output_sink sink = { .at_line_start = true };
	struct options options;
	struct timespec start;
	int pipe_fds[2], pidfd, err;
	pid_t pid;

	parse_options(argc, argv, &options);
	sink.timestamp_lines = options.timestamp_lines;
	sink.match_text = options.match_text;
	if (options.output_path) {
		sink.copy = fopen(options.output_path, "w");
		if (!sink.copy) {
			fprintf(stderr, "measure: cannot open %s: %s\n", options.output_path,
				strerror(errno));
			return 1;
		}
	}
	if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
		perror("measure: pipe2 failed");
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	pid = fork();
	if (pid < 0) {
		perror("measure: fork failed");
		return 1;
	}
	if (pid == 0)
		exec_command(&options, pipe_fds[1]);
	close(pipe_fds[1]);

	/* A pidfd lets one poll() wait for output and for the exit at once. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		perror("measure: pidfd_open failed (Linux 5.3 or later is needed)");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}

	err = watch_command(pid, pidfd, pipe_fds[0], &options, &sink, &result, &start);
	if (sink.copy && fclose(sink.copy) != 0) {
		fprintf(stderr, "measure: cannot write %s: %s\n", options.output_path,
			strerror(errno));
		err = -1;
	}
	if (err < 0)
		return 1;

	print_result(&result);
	return 0;
}
