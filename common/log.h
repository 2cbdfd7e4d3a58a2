/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <syslog.h>

#include "common/util.h"

/* Only programs (the top of a call chain) log; library code returns -errno. */
void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_ident(const char *ident);
/* "emerg" … "debug" (syslog's names, as --log-level takes them) → LOG_*; -EINVAL for anything else. */
int log_level_from_string(const char *s);
/* A program's --log-level VALUE: sets the level, or says "PROG: --log-level: unknown level 'VALUE'" on stderr
 * and returns -EINVAL (the program exits 2). */
int log_level_option(const char *prog, const char *value);

/* Logs a line to stderr; %m uses -error when error < 0. Returns error (or -EIO if 0 for log_error_errno). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)
