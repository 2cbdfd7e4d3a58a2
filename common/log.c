/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int max_level = LOG_INFO;
static const char *log_ident = "kvnet";

void log_set_max_level(int level) {
        max_level = level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };
        for (int i = 0; s && i < (int) ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return i;
        return -EINVAL;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_ident(const char *ident) {
        log_ident = ident;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        static const char *const names[] = { "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug" };
        int saved = errno;

        if (level > max_level)
                return error < 0 ? error : -EIO;

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);

        char buf[2048];
        va_list ap;
        if (error < 0)
                errno = -error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        if (level == LOG_DEBUG)
                fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: %s (%s:%d)\n", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
                        (int) getpid(), names[level & 7], buf, file, line);
        else
                fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: %s\n", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
                        (int) getpid(), names[level & 7], buf);
        errno = saved;
        return error < 0 ? error : -EIO;
}

int log_level_option(const char *prog, const char *value) {
        int lvl = log_level_from_string(value);
        if (lvl < 0) {
                fprintf(stderr, "%s: --log-level: unknown level '%s'\n", prog, value);
                return -EINVAL;
        }
        log_set_max_level(lvl);
        return 0;
}
