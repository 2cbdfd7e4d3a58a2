/* SPDX-License-Identifier: Apache-2.0 */
#include "common/array.h"

#define ARRAY_FIRST_CAP 8

int array_grow(void **p, size_t *cap, size_t need, size_t elem) {
        if (need <= *cap)
                return 0;
        if (elem == 0)
                return -EINVAL;

        size_t nc = *cap ? *cap : ARRAY_FIRST_CAP;
        while (nc < need) {
                if (nc > SIZE_MAX / 2)
                        return -ENOMEM;
                nc *= 2;
        }
        if (nc > SIZE_MAX / elem)
                return -ENOMEM;

        void *v = realloc(*p, nc * elem);
        if (!v)
                return -ENOMEM;
        *p = v;
        *cap = nc;
        return 0;
}
