/* SPDX-License-Identifier: Apache-2.0 */
/* A token bucket: `rate` tokens a second, at most `burst` kept. Two ways to spend: take one only when there is one
 * (drop what exceeds it: netd's per-guest DHCP allowance), or reserve one and wait until it is due (the API
 * client's QPS/burst, as client-go's limiter). Times are the caller's monotonic microseconds. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct KvTokenBucket {
        double rate, burst, tokens;
        uint64_t last_usec;
} KvTokenBucket;

/* Full; a burst of 0 is 1. A rate <= 0 never limits. */
void kv_token_bucket_init(KvTokenBucket *b, double rate, unsigned burst, uint64_t now_usec);
/* One token if there is one now (true), else nothing is taken (false). */
bool kv_token_bucket_take(KvTokenBucket *b, uint64_t now_usec);
/* One token now, even borrowed (tokens go below zero): how many microseconds to wait before using it. */
uint64_t kv_token_bucket_reserve(KvTokenBucket *b, uint64_t now_usec);
