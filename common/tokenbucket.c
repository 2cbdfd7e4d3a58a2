/* SPDX-License-Identifier: Apache-2.0 */
#include "common/tokenbucket.h"

void kv_token_bucket_init(KvTokenBucket *b, double rate, unsigned burst, uint64_t now_usec) {
        *b = (KvTokenBucket){ .rate = rate, .burst = burst ? burst : 1, .tokens = burst ? burst : 1,
                              .last_usec = now_usec };
}

static void refill(KvTokenBucket *b, uint64_t now_usec) {
        if (now_usec <= b->last_usec)
                return;
        b->tokens += (double) (now_usec - b->last_usec) / 1e6 * b->rate;
        if (b->tokens > b->burst)
                b->tokens = b->burst;
        b->last_usec = now_usec;
}

bool kv_token_bucket_take(KvTokenBucket *b, uint64_t now_usec) {
        if (b->rate <= 0)
                return true;
        refill(b, now_usec);
        if (b->tokens < 1)
                return false;
        b->tokens -= 1;
        return true;
}

uint64_t kv_token_bucket_reserve(KvTokenBucket *b, uint64_t now_usec) {
        if (b->rate <= 0)
                return 0;
        refill(b, now_usec);
        b->tokens -= 1;
        if (b->tokens >= 0)
                return 0;
        return (uint64_t) (-b->tokens / b->rate * 1e6) + 1;
}
