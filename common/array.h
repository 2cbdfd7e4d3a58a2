/* SPDX-License-Identifier: Apache-2.0 */
/* Growing an array by realloc: one place for the doubling, the first capacity and the overflow checks that
 * every hand-rolled "if (n == cap) { cap *= 2; realloc; }" block used to repeat. */
#pragma once

#include "common/util.h"

/* Makes *p (an array of *cap elements of elem bytes) hold at least need elements: doubles *cap (or starts
 * at 8) until it does, reallocs *p, and updates *p and *cap. The new tail is not initialised. Returns 0 with
 * nothing changed when *cap already suffices; -ENOMEM when the size overflows or realloc fails, with *p and
 * *cap untouched (the old array stays valid and owned by the caller). */
int array_grow(void **p, size_t *cap, size_t need, size_t elem) _wur_;

/* array_grow() for a typed pointer: ARRAY_GROW(l->v, l->cap, l->n + 1). */
#define ARRAY_GROW(ptr, cap, need)                                                   \
        ({                                                                           \
                void *_ag_p_ = (ptr);                                                \
                int _ag_r_ = array_grow(&_ag_p_, &(cap), (need), sizeof *(ptr));     \
                if (_ag_r_ >= 0)                                                     \
                        (ptr) = _ag_p_;                                              \
                _ag_r_;                                                              \
        })
