/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sm_error__set(struct sm_error *error, int code, const char *fmt, ...)
{
	va_list args;

	if (!error)
		return -code;
	error->code = code;
	va_start(args, fmt);
	vsnprintf(error->message, sizeof(error->message), fmt, args);
	va_end(args);
	return -code;
}

int sm_error__prefix(struct sm_error *error, const char *fmt, ...)
{
	char prefix[512];
	char old[sizeof(error->message)];
	va_list args;

	va_start(args, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, args);
	va_end(args);
	memcpy(old, error->message, sizeof(old));
	snprintf(error->message, sizeof(error->message), "%s: %s", prefix, old);
	return -error->code;
}

void sm_error__clear(struct sm_error *error)
{
	error->code = 0;
	error->message[0] = '\0';
}
