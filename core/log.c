/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdio.h>
#include <string.h>

static enum smcore_log_level current_level = SMCORE_LOG_WARNING;

static const char *const level_names[] = {
	[SMCORE_LOG_ERROR] = "error",
	[SMCORE_LOG_WARNING] = "warning",
	[SMCORE_LOG_INFO] = "info",
	[SMCORE_LOG_DEBUG] = "debug",
};

void log__set_level(enum smcore_log_level level)
{
	current_level = level;
}

enum smcore_log_level log__level(void)
{
	return current_level;
}

void log__vwrite(enum smcore_log_level level, const char *subsystem, const char *fmt, va_list args)
{
	char line[2048];
	int used;

	if (level > current_level || level > SMCORE_LOG_DEBUG)
		return;
	/* One write per line, so lines from vCPU threads do not interleave. */
	used = snprintf(line, sizeof(line), "smcore: %s: %s: ", level_names[level], subsystem);
	vsnprintf(line + used, sizeof(line) - used, fmt, args);
	used = strlen(line);
	if (used < (int)sizeof(line) - 1)
		line[used++] = '\n';
	else
		line[sizeof(line) - 2] = '\n';
	fwrite(line, 1, used, stderr);
}

void log__write(enum smcore_log_level level, const char *subsystem, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	log__vwrite(level, subsystem, fmt, args);
	va_end(args);
}
