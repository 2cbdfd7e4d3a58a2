/* SPDX-License-Identifier: Apache-2.0 */
/* A Prometheus endpoint (docs/metrics.md): GET /metrics served by libmicrohttpd on a thread of its own (all signals
 * blocked there: the daemons read theirs from a signalfd), the text made by the caller's render function on that
 * thread when scraped (netd hands the work to its loop; the controller renders from figures it keeps under a
 * mutex). The text format's helpers are common/metrics-text.h. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "common/kverr.h"
#include "common/metrics-text.h"

/* The exposition text (format 0.0.4), malloc'd; NULL: 503 with why (a static string) in *why. */
typedef char *(*kv_metrics_render_fn)(void *userdata, const char **why);

typedef struct KvMetricsServer KvMetricsServer;

/* "ADDR:PORT", an IPv4 address and a port 0..65535 (0: any free one); key names the setting in errors ("config:
 * 'metricsListen'", "--metrics-listen"). any_ok: 0.0.0.0 is allowed (a pod's own network); else it is refused (a node
 * whose interfaces include tenants' bridges). */
int kv_metrics_parse_listen(const char *s, const char *key, bool any_ok, KvErr *e) _wur_;
int kv_metrics_server_new(const char *listen, const char *key, bool any_ok, kv_metrics_render_fn render,
                          void *userdata, KvMetricsServer **ret, KvErr *e) _wur_;
/* Stops the thread (a scrape in progress ends first). */
KvMetricsServer *kv_metrics_server_free(KvMetricsServer *s);
/* The port it listens on (the one chosen for port 0). */
unsigned kv_metrics_server_port(const KvMetricsServer *s);
