/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 (FIPS 180-4), for checking OCI digests. */
#ifndef SMCORE_SHA256_H
#define SMCORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t state[8];
	uint64_t length;
	uint8_t block[64];
	size_t used;
};

void sha256__init(struct sha256 *ctx);
void sha256__update(struct sha256 *ctx, const void *data, size_t size);
/* Pad the message and write its lowercase hex digest to `hex` (65 bytes with the NUL). */
void sha256__final(struct sha256 *ctx, char hex[65]);
/* Write the lowercase hex digest of `data` to `hex`. */
void sha256__hex(const void *data, size_t size, char hex[65]);

#endif
