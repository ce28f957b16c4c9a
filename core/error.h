/* SPDX-License-Identifier: Apache-2.0 */
/* Error values that carry a message for the user. */
#ifndef SMCORE_ERROR_H
#define SMCORE_ERROR_H

#include <stddef.h>

struct sm_error {
	int code;           /* positive errno, 0 when no error was recorded */
	char message[1024];
};

/* Record a message and errno `code` (positive) in `error`, which may be NULL; returns -code. */
int sm_error__set(struct sm_error *error, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prefix the recorded message with "PREFIX: "; returns -error->code. */
int sm_error__prefix(struct sm_error *error, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sm_error__clear(struct sm_error *error);

#endif
