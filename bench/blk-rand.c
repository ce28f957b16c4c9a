// SPDX-License-Identifier: Apache-2.0
/*
 * Random 4 KiB reads with O_DIRECT from a block device, for bench/blk:
 *
 *   blk-rand DEVICE COUNT
 *
 * Reads COUNT blocks of 4 KiB at offsets drawn uniformly from the whole
 * device, one request at a time (queue depth 1), and prints one line:
 *
 *   rand_reads=2000 rand_ns=1234567890
 *
 * rand_ns is the CLOCK_MONOTONIC time of all reads together. The offsets
 * come from a fixed seed, so every run reads the same blocks in the same
 * order. The bench builds it static with musl-gcc, because it runs in the
 * guest's Debian root, which has no compiler. Exit status 0, or 1 when the
 * device cannot be opened or a read fails or comes back short.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_SIZE 4096

/* xorshift64: fast and good enough to spread offsets over the device. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static int64_t elapsed_ns(const struct timespec *start, const struct timespec *end)
{
	return (int64_t)(end->tv_sec - start->tv_sec) * 1000000000 +
	       (end->tv_nsec - start->tv_nsec);
}

int main(int argc, char **argv)
{
	uint64_t state = 0x9e3779b97f4a7c15u, blocks;
	struct timespec start, end;
	char *end_of_count;
	long count;
	off_t size;
	void *buffer;
	int fd;

	if (argc != 3) {
		fputs("usage: blk-rand DEVICE COUNT\n", stderr);
		return 2;
	}
	count = strtol(argv[2], &end_of_count, 10);
	if (*end_of_count != '\0' || count <= 0) {
		fprintf(stderr, "blk-rand: invalid COUNT '%s' (expected a positive integer)\n",
			argv[2]);
		return 2;
	}

	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "blk-rand: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size < BLOCK_SIZE) {
		fprintf(stderr, "blk-rand: %s is smaller than one %d-byte block\n", argv[1],
			BLOCK_SIZE);
		return 1;
	}
	blocks = (uint64_t)size / BLOCK_SIZE;
	/* O_DIRECT needs a buffer aligned to the logical block size. */
	if (posix_memalign(&buffer, BLOCK_SIZE, BLOCK_SIZE) != 0) {
		fputs("blk-rand: out of memory\n", stderr);
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < count; i++) {
		off_t offset = (off_t)(next_random(&state) % blocks) * BLOCK_SIZE;
		ssize_t n = pread(fd, buffer, BLOCK_SIZE, offset);

		if (n != BLOCK_SIZE) {
			fprintf(stderr, "blk-rand: read %ld at offset %lld: %s\n", i,
				(long long)offset, n < 0 ? strerror(errno) : "short read");
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);

	printf("rand_reads=%ld rand_ns=%lld\n", count, (long long)elapsed_ns(&start, &end));
	return 0;
}
