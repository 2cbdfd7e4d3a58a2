/* SPDX-License-Identifier: Apache-2.0 */
/* The informer's retry backoff (the client's QPS/burst is common/tokenbucket.h). */
#include "kube/kube-priv.h"

unsigned kube_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, unsigned *seed) {
        uint64_t d = min_ms ? min_ms : 1;
        for (unsigned i = 0; i < attempt && d < max_ms; i++)
                d *= 2;
        if (d > max_ms)
                d = max_ms;
        unsigned half = (unsigned) (d / 2);
        return (unsigned) (d - half) + (half ? (unsigned) rand_r(seed) % (half + 1) : 0);
}
