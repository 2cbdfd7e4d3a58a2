/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet common helpers: cleanup attributes, ownership transfer, small macros. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _wur_ __attribute__((warn_unused_result))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _tp_ = (p);    \
                (p) = NULL;                  \
                _tp_;                        \
        })

#define TAKE_FD(fd)                          \
        ({                                   \
                int _tfd_ = (fd);            \
                (fd) = -1;                   \
                _tfd_;                       \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (fd && *fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
        static inline void func##p(type *p) {          \
                if (*p)                                \
                        func(*p);                      \
        }

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

/* Negative errno from the current errno, never 0. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* FNV-1a 64: stable hash for names derived from identities (not security). */
static inline uint64_t kv_hash64(const void *data, size_t n) {
        const unsigned char *p = data;
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 1099511628211ULL;
        }
        return h;
}

/* Explicitly discards the result of a _wur_ function (cleanup paths where failure changes nothing). */
#define IGNORE_RESULT(expr)                        \
        do {                                       \
                __typeof__(expr) _ign_ = (expr);   \
                (void) _ign_;                      \
        } while (0)
