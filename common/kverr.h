/* SPDX-License-Identifier: Apache-2.0 */
/* Error object shared by the plugin and the daemon: a CNI error code plus a message that names the field. */
#pragma once

#include <stdarg.h>

#include "common/util.h"

/* CNI spec error codes (SPEC.md "Error"), and kvnet's own (>= 100). */
enum {
        KV_ERR_OK = 0,
        KV_ERR_INCOMPATIBLE_VERSION = 1,
        KV_ERR_UNSUPPORTED_FIELD = 2,
        KV_ERR_UNKNOWN_CONTAINER = 3,
        KV_ERR_INVALID_ENV = 4,
        KV_ERR_IO = 5,
        KV_ERR_DECODE = 6,
        KV_ERR_INVALID_CONFIG = 7,
        KV_ERR_TRY_AGAIN = 11,
        KV_ERR_NOT_AVAILABLE = 50,
        KV_ERR_NOT_AVAILABLE_LIMITED = 51,
        KV_ERR_IPAM_EXHAUSTED = 100,
        KV_ERR_ADDRESS_IN_USE = 101,
        KV_ERR_EXISTS = 102,
        KV_ERR_INTERNAL = 999,
};

typedef struct KvErr {
        int code;
        char msg[512];
        char details[512];
} KvErr;

/* Fills *e (if non-NULL and not yet set) and returns ret (a negative errno). */
int kverr_set(KvErr *e, int code, int ret, const char *fmt, ...) _printf_(4, 5);
/* Like kverr_set, but appends ": <strerror(-ret)>" to the details. */
int kverr_set_errno(KvErr *e, int code, int ret, const char *fmt, ...) _printf_(4, 5);
/* kverr_set() for a caller that takes the format and arguments itself. */
int kverr_setv(KvErr *e, int code, int ret, const char *fmt, va_list ap) _printf_(4, 0);
void kverr_clear(KvErr *e);
static inline bool kverr_is_set(const KvErr *e) {
        return e && e->code != 0;
}
