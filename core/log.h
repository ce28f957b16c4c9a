/* SPDX-License-Identifier: Apache-2.0 */
/* Log lines of the form "smcore: subsystem: message" on standard error. */
#ifndef SMCORE_LOG_H
#define SMCORE_LOG_H

#include <stdarg.h>

#include <smcore/plugin.h>

/* Lines above this level are dropped; SMCORE_LOG_WARNING unless changed. */
void log__set_level(enum smcore_log_level level);
enum smcore_log_level log__level(void);
void log__write(enum smcore_log_level level, const char *subsystem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log__vwrite(enum smcore_log_level level, const char *subsystem, const char *fmt, va_list args);

#define log_error(subsystem, ...) log__write(SMCORE_LOG_ERROR, subsystem, __VA_ARGS__)
#define log_warning(subsystem, ...) log__write(SMCORE_LOG_WARNING, subsystem, __VA_ARGS__)
#define log_info(subsystem, ...) log__write(SMCORE_LOG_INFO, subsystem, __VA_ARGS__)
#define log_debug(subsystem, ...) log__write(SMCORE_LOG_DEBUG, subsystem, __VA_ARGS__)

#endif
