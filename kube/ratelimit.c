/* SPDX-License-Identifier: Apache-2.0 */
/* The client's token bucket (client-go's QPS/burst) and the informer's retry backoff. */
#include "kube/kube-priv.h"

void kube_ratelimit_init(KubeRateLimit *rl, double qps, unsigned burst, uint64_t now_usec) {
        *rl = (KubeRateLimit){ .qps = qps, .burst = burst ? burst : 1, .tokens = burst ? burst : 1,
                               .last_usec = now_usec };
}

uint64_t kube_ratelimit_reserve(KubeRateLimit *rl, uint64_t now_usec) {
        if (rl->qps <= 0)
                return 0;
        if (now_usec > rl->last_usec) {
                rl->tokens += (double) (now_usec - rl->last_usec) / 1e6 * rl->qps;
                if (rl->tokens > rl->burst)
                        rl->tokens = rl->burst;
                rl->last_usec = now_usec;
        }
        rl->tokens -= 1;
        if (rl->tokens >= 0)
                return 0;
        return (uint64_t) (-rl->tokens / rl->qps * 1e6) + 1;
}

unsigned kube_backoff_ms(unsigned attempt, unsigned min_ms, unsigned max_ms, unsigned *seed) {
        uint64_t d = min_ms ? min_ms : 1;
        for (unsigned i = 0; i < attempt && d < max_ms; i++)
                d *= 2;
        if (d > max_ms)
                d = max_ms;
        unsigned half = (unsigned) (d / 2);
        return (unsigned) (d - half) + (half ? (unsigned) rand_r(seed) % (half + 1) : 0);
}
