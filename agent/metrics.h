/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-node's Prometheus figures (docs/metrics.md): its launcher pods by state, pod starts by result with their
 * time to running, pod stops, migrations' node halves by role and result, and the Events it posted. Counted on the
 * agent's loop, read by the HTTP thread (common/metrics-http.c): everything under one mutex, the pods' gauges
 * refreshed on every tick. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/event.h"

typedef struct AgentMetrics AgentMetrics;

int agent_metrics_new(const char *node, AgentMetrics **ret) _wur_;
AgentMetrics *agent_metrics_free(AgentMetrics *m);

/* A pod start ended: ok, or failed, or will be tried again (retry), seconds since the pod was seen. */
typedef enum AgentStart { AGENT_START_OK, AGENT_START_FAILED, AGENT_START_RETRY, _AGENT_START_MAX } AgentStart;
void agent_metrics_start(AgentMetrics *m, AgentStart result, double seconds);
void agent_metrics_stop(AgentMetrics *m, bool ok);
/* The pods by state right now: n_states counts, named by names. */
void agent_metrics_pods(AgentMetrics *m, const char *const *names, const size_t *counts, size_t n_states);
/* The exposition text, malloc'd (NULL: out of memory); ev: the Event recorder's figures. */
char *agent_metrics_render(AgentMetrics *m, KubeEventStats ev);
