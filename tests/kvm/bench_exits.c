// SPDX-License-Identifier: Apache-2.0
/*
 * Measures port I/O exits handled per second: a ring-3 guest writes to a port
 * N times and the host handles each exit as the core would (reads the data,
 * re-enters). Usage: bench_exits [N] (default 100000). Prints the rate and
 * the process peak RSS (ru_maxrss). Exits with 77 without /dev/kvm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "testvm.h"

int main(int argc, char **argv)
{
	unsigned long count = argc > 1 ? strtoul(argv[1], NULL, 0) : 100000;
	struct testvm_args args = { .rcx = count, .rdi = 7 };
	struct timespec begin, end;
	unsigned long exits = 0;
	struct smcore_exit exit;
	struct rusage usage;
	struct testvm t;
	uint32_t sum = 0;
	char reason[512];
	double seconds;

	if (count == 0 || count > 0xffffffffu) {
		fprintf(stderr, "bench_exits: invalid count %s (1 to 4294967295)\n", argv[1]);
		return 2;
	}
	if (testvm__check_kvm(reason, sizeof(reason))) {
		printf("SKIP: /dev/kvm not available: %s\n", reason);
		return 77;
	}
	if (testvm__load_plugin(testvm__plugin_path(), reason, sizeof(reason))) {
		fprintf(stderr, "bench_exits: cannot load the plugin: %s\n", reason);
		return 1;
	}
	if (testvm__create(&t, 1, SMCORE_CPU_TEMPLATE_HOST, SMCORE_VM_NO_IRQCHIP) ||
	    testvm__start(&t, 0, guest_out_loop, &args)) {
		fprintf(stderr, "bench_exits: cannot create the VM: %s\n", testvm__last_error());
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &begin);
	for (;;) {
		if (testvm_ops.run_vcpu(t.vcpu[0], &exit)) {
			fprintf(stderr, "bench_exits: run_vcpu failed: %s\n", testvm__last_error());
			return 1;
		}
		if (exit.reason == SMCORE_EXIT_HLT)
			break;
		if (exit.reason != SMCORE_EXIT_IO || exit.io.port != 0x30) {
			fprintf(stderr, "bench_exits: unexpected exit %s\n",
				testvm__describe_exit(&exit, reason, sizeof(reason)));
			return 1;
		}
		sum += exit.io.data[0];
		exits++;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	getrusage(RUSAGE_SELF, &usage);
	testvm__destroy(&t);

	if (exits != count || sum != (uint32_t)(7 * count)) {
		fprintf(stderr, "bench_exits: %lu exits, expected %lu\n", exits, count);
		return 1;
	}
	seconds = (double)(end.tv_sec - begin.tv_sec) + (double)(end.tv_nsec - begin.tv_nsec) / 1e9;
	printf("port I/O exits: %lu in %.3f s\n", exits, seconds);
	printf("exits per second: %.0f\n", (double)exits / seconds);
	printf("peak RSS: %ld KiB\n", usage.ru_maxrss);
	return 0;
}
