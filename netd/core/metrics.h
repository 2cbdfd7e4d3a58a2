/* SPDX-License-Identifier: Apache-2.0 */
/* netd's Prometheus endpoint (config "metricsListen", docs/metrics.md).
 *
 * libmicrohttpd serves GET /metrics on a thread of its own; the text is made on netd's loop (which owns every
 * figure, so nothing is read while it changes): the HTTP thread asks through an eventfd and waits for the answer
 * (2 s at most, then 503). Nothing is made while nobody scrapes. */
#pragma once

#include <stdint.h>

#include "common/kverr.h"

typedef struct Manager Manager;
typedef struct NetdMetrics NetdMetrics;

/* The request-duration histogram's upper bounds, seconds. */
#define NETD_METRICS_BUCKETS 14

/* One verb's requests: counts by CNI result code (0 = success), and its duration histogram. */
typedef struct NetdVerbStats {
        unsigned codes[16];
        uint64_t by_code[16];
        size_t n_codes;
        uint64_t other; /* a 17th distinct code and beyond */
        uint64_t buckets[NETD_METRICS_BUCKETS];
        uint64_t count;
        double sum;
} NetdVerbStats;

/* "ADDR:PORT": an IPv4 address (the node's loopback or its own address, never a tenant's) and a port 1..65535.
 * Errors name the key and the value. */
int netd_metrics_parse_listen(const char *s, KvErr *e) _wur_;
/* Starts serving on listen (already parsed). */
int netd_metrics_new(Manager *m, const char *listen, NetdMetrics **ret, KvErr *e) _wur_;
/* Stops the HTTP thread (a scrape waiting for the loop gets 503). */
NetdMetrics *netd_metrics_free(NetdMetrics *mx);
/* The port it listens on (the one chosen for port 0). */
unsigned netd_metrics_port(const NetdMetrics *mx);
/* Counts one request of verb index v (or the unknown ones: v = -1), its code and duration. On the loop. */
void netd_metrics_request(Manager *m, int v, unsigned code, uint64_t usec);
/* The exposition text (Prometheus text format 0.0.4) of m, malloc'd; NULL when out of memory. On the loop. */
char *netd_metrics_render(Manager *m);
