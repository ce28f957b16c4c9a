/* SPDX-License-Identifier: Apache-2.0 */
/* The smcore command line. Only this file may exit the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smcore/smcore.h>

#include "image_import.h"

#define EXIT_FAILURE_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124

static const char usage_text[] =
	"Usage: smcore [OPTIONS] --config FILE [--set SECTION.KEY=VALUE]... [-- COMMAND [ARG]...]\n"
	"       smcore plugins [--plugin-path DIRS]\n"
	"       smcore probe [--config FILE]\n"
	"       smcore initramfs --config FILE --output FILE [--set ...] [-- COMMAND [ARG]...]\n"
	"       smcore image import SRC [--output FILE]\n"
	"\n"
	"Boot the machine described by the INI config FILE and run its [run] command,\n"
	"or COMMAND, in the guest. smcore exits with the command's exit status\n"
	"(128 + N when signal N killed it), 2 for a usage or config error, 124 when\n"
	"[run] timeout expired, 128 + N when signal N stopped smcore itself, 125 when\n"
	"the guest's init could not start the command, and 1 when the VM could not\n"
	"run or stopped before the command's status arrived.\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE        machine config (INI); see docs/config.md\n"
	"  -s, --set S.KEY=VALUE    override a config key, applied after the file (repeatable)\n"
	"  -p, --plugin-path DIRS   colon-separated plugin directories, searched first (repeatable)\n"
	"  -o, --output FILE        where `smcore initramfs` writes the archive, or\n"
	"                           `smcore image import` the squashfs image\n"
	"  -v, --verbose            more log output (repeat for debug)\n"
	"  -q, --quiet              log errors only\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"Commands:\n"
	"  plugins                  list the plugins found, with kind, name, version and ABI\n"
	"  probe                    check that the accelerator can run Linux guests on this host\n"
	"  initramfs                write the initramfs the config boots with, and print its\n"
	"                           kernel command line (for booting it with another VMM)\n"
	"  image import SRC         turn the OCI layout directory, oci-archive or\n"
	"                           docker-archive SRC into a squashfs root image, in\n"
	"                           FILE or in the image cache; prints its digest and path\n";

struct cli {
	const char *command;          /* NULL or "run", "plugins", "probe", "initramfs" or "image" */
	struct smcore_options options;
	char **overrides;
	size_t override_count;
	char **plugin_path;
	size_t plugin_path_count;
	const char *output;           /* initramfs or image import --output FILE */
	const char *image_action;     /* the word after "image": only "import" exists */
	const char *image_source;     /* image import SRC */
	int log_level;
};

static int append(char ***list, size_t *count, char *value)
{
	char **grown = realloc(*list, (*count + 1) * sizeof(**list));

	if (!grown)
		return -ENOMEM;
	grown[(*count)++] = value;
	*list = grown;
	return 0;
}

static int is_subcommand(const char *word)
{
	return strcmp(word, "run") == 0 || strcmp(word, "plugins") == 0 || strcmp(word, "probe") == 0 ||
	       strcmp(word, "initramfs") == 0 || strcmp(word, "image") == 0;
}

/* Returns -1 to go on, or the exit status for --help, --version or a usage error. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
		{ 0 },
	};
	int option;

	cli->log_level = 1;
	opterr = 0; /* getopt's own messages start with the program's full path */
	for (;;) {
		option = getopt_long(argc, argv, "+c:s:p:o:vqhV", long_options, NULL);
		if (option == -1) {
			/* getopt stops at "--" (and skips it) or at the first word that is not an option. */
			if (optind >= argc || strcmp(argv[optind - 1], "--") == 0)
				break;
			if (!cli->command && is_subcommand(argv[optind])) {
				cli->command = argv[optind++];
				continue;
			}
			if (cli->command && strcmp(cli->command, "image") == 0 && !cli->image_source) {
				if (!cli->image_action)
					cli->image_action = argv[optind++];
				else
					cli->image_source = argv[optind++];
				continue;
			}
			fprintf(stderr, "smcore: unexpected argument '%s'; put the guest command after '--'\n",
				argv[optind]);
			return EXIT_USAGE;
		}
		switch (option) {
		case 'c':
			cli->options.config_path = optarg;
			break;
		case 's':
			if (append(&cli->overrides, &cli->override_count, optarg))
				return EXIT_FAILURE_RUNTIME;
			break;
		case 'p':
			if (append(&cli->plugin_path, &cli->plugin_path_count, optarg))
				return EXIT_FAILURE_RUNTIME;
			break;
		case 'o':
			if (cli->output) {
				fprintf(stderr, "smcore: --output given twice ('%s' and '%s'); give it once\n",
					cli->output, optarg);
				return EXIT_USAGE;
			}
			cli->output = optarg;
			break;
		case 'v':
			cli->log_level++;
			break;
		case 'q':
			cli->log_level = 0;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("smcore %s\n", smcore_version());
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "smcore: invalid option '-%c' or missing value\n", optopt);
			else
				fprintf(stderr, "smcore: invalid option '%s' or missing value\n", argv[optind - 1]);
			fputs("Try 'smcore --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli->options.argv = &argv[optind];
		cli->options.argc = (size_t)(argc - optind);
	}
	cli->options.overrides = cli->overrides;
	cli->options.override_count = cli->override_count;
	cli->options.plugin_path = cli->plugin_path;
	cli->options.plugin_path_count = cli->plugin_path_count;
	return -1;
}

static int exit_status_for(const struct smcore_error *error)
{
	if (error->kind == SMCORE_ERROR_CONFIG)
		return EXIT_USAGE;
	if (error->code == ETIMEDOUT)
		return EXIT_TIMEOUT;
	return EXIT_FAILURE_RUNTIME;
}

/* The signal that stopped the run; smcore then exits with 128 + its number, as shells do. */
static int stop_signal;

/* Fill `signals` with the signals that stop smcore: SIGINT, SIGTERM and SIGHUP. */
static void stop_signals(sigset_t *signals)
{
	sigemptyset(signals);
	sigaddset(signals, SIGINT);
	sigaddset(signals, SIGTERM);
	sigaddset(signals, SIGHUP);
}

/* Stops the machine on a stop signal, which every other thread blocks. */
static void *signal_thread(void *opaque)
{
	struct smcore_machine *machine = opaque;
	sigset_t signals;
	int signal_number;

	stop_signals(&signals);
	if (sigwait(&signals, &signal_number) == 0) {
		fprintf(stderr, "smcore: %s received, stopping\n", strsignal(signal_number));
		__atomic_store_n(&stop_signal, signal_number, __ATOMIC_RELEASE);
		if (machine)
			smcore_machine_stop(machine);
	}
	return NULL;
}

/* Block the stop signals in every thread but one that waits for them; `machine` may be NULL. */
static void watch_signals(struct smcore_machine *machine)
{
	pthread_t watcher;
	sigset_t signals;

	stop_signals(&signals);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	if (pthread_create(&watcher, NULL, signal_thread, machine) == 0)
		pthread_detach(watcher);
}

static int run_machine(struct cli *cli)
{
	struct smcore_machine *machine;
	struct smcore_error error = { 0 };
	struct smcore_result result;

	if (!cli->options.config_path) {
		fputs("smcore: missing --config FILE\nTry 'smcore --help'.\n", stderr);
		return EXIT_USAGE;
	}
	if (smcore_machine_load(&cli->options, &machine, &error)) {
		fprintf(stderr, "smcore: %s\n", error.message);
		return exit_status_for(&error);
	}

	watch_signals(machine);
	if (smcore_machine_run(machine, &result, &error)) {
		fprintf(stderr, "smcore: %s\n", error.message);
		smcore_machine_free(machine);
		if (error.code == EINTR && __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE))
			return 128 + __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
		return exit_status_for(&error);
	}
	smcore_machine_free(machine);
	return result.exit_status;
}

static int write_initramfs(struct cli *cli)
{
	struct smcore_machine *machine;
	struct smcore_error error = { 0 };
	char cmdline[4096];
	int status = 0;

	if (!cli->options.config_path || !cli->output) {
		fputs("smcore: initramfs needs --config FILE and --output FILE\n", stderr);
		return EXIT_USAGE;
	}
	if (smcore_machine_load(&cli->options, &machine, &error)) {
		fprintf(stderr, "smcore: %s\n", error.message);
		return exit_status_for(&error);
	}
	if (smcore_machine_write_initramfs(machine, cli->output, &error)) {
		fprintf(stderr, "smcore: %s\n", error.message);
		status = exit_status_for(&error);
	} else {
		printf("%s\n", smcore_machine_cmdline(machine, cmdline, sizeof(cmdline)));
	}
	smcore_machine_free(machine);
	return status;
}

static int import_image(struct cli *cli)
{
	struct image_root root = { 0 };
	struct sm_error error = { 0 };
	char *cache_dir = NULL;
	const char *path = cli->output;
	int ret;

	if (cli->image_action && strcmp(cli->image_action, "import") != 0) {
		fprintf(stderr, "smcore: unknown image command '%s'; use 'smcore image import SRC'\n",
			cli->image_action);
		return EXIT_USAGE;
	}
	if (cli->options.config_path || cli->override_count > 0) {
		fputs("smcore: image import takes no --config or --set; it reads only SRC\n", stderr);
		return EXIT_USAGE;
	}
	if (!cli->image_action || !cli->image_source || cli->options.argc > 0 || (cli->output && !cli->output[0])) {
		fputs("smcore: usage: smcore image import SRC [--output FILE]\n", stderr);
		return EXIT_USAGE;
	}

	watch_signals(NULL);
	image_import__set_cancel_flag(&stop_signal);
	if (cli->output) {
		ret = image_import__to_file(cli->image_source, cli->output, &root.config, &error);
	} else {
		cache_dir = image_import__default_cache_dir();
		if (!cache_dir) {
			fputs("smcore: no image cache directory: set SMCORE_CACHE_DIR or HOME, or pass --output FILE\n",
			      stderr);
			return EXIT_FAILURE_RUNTIME;
		}
		ret = image_import__cached(cli->image_source, cache_dir, &root, &error);
		path = root.path;
	}
	if (ret < 0) {
		fprintf(stderr, "smcore: %s\n", error.message);
	} else if (cli->output || root.imported) {
		printf("imported sha256:%s to %s\n", root.config.manifest_digest, path);
	} else {
		printf("cached sha256:%s at %s\n", root.config.manifest_digest, path);
	}
	image_root__release(&root);
	free(cache_dir);
	if (ret == -EINTR && __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE))
		return 128 + __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
	return ret < 0 ? EXIT_FAILURE_RUNTIME : 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct smcore_error error = { 0 };
	int status;

	status = parse_args(argc, argv, &cli);
	if (status >= 0)
		goto out;
	smcore_set_log_level(cli.log_level);

	if (cli.command && strcmp(cli.command, "run") == 0)
		cli.command = NULL;
	if (cli.command && strcmp(cli.command, "plugins") == 0) {
		status = smcore_plugins_list(&cli.options, stdout) < 0 ? EXIT_FAILURE_RUNTIME : 0;
	} else if (cli.command && strcmp(cli.command, "probe") == 0) {
		if (smcore_probe(&cli.options, &error)) {
			fprintf(stderr, "smcore: %s\n", error.message);
			status = exit_status_for(&error);
		} else {
			printf("smcore: this host can run Linux guests\n");
			status = 0;
		}
	} else if (cli.command && strcmp(cli.command, "initramfs") == 0) {
		status = write_initramfs(&cli);
	} else if (cli.command && strcmp(cli.command, "image") == 0) {
		status = import_image(&cli);
	} else {
		status = run_machine(&cli);
	}
out:
	free(cli.overrides);
	free(cli.plugin_path);
	return status;
}
