/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics-text.h"

#define MAX_STATES 16
/* a pod's start: from the API's pod to a running launcher (the sandbox, its CNI ADDs, libvirtd, QEMU) */
static const double start_le[] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300 };

struct AgentMetrics {
        pthread_mutex_t mu;
        char *node;
        uint64_t starts[_AGENT_START_MAX], stops[2];
        uint64_t start_b[ELEMENTSOF(start_le)], start_n;
        double start_sum;
        char *states[MAX_STATES];
        size_t counts[MAX_STATES], n_states;
};

int agent_metrics_new(const char *node, AgentMetrics **ret) {
        AgentMetrics *m = calloc(1, sizeof *m);
        if (!m || !(m->node = strdup(node ? node : ""))) {
                free(m);
                return -ENOMEM;
        }
        pthread_mutex_init(&m->mu, NULL);
        *ret = m;
        return 0;
}

AgentMetrics *agent_metrics_free(AgentMetrics *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_states; i++)
                free(m->states[i]);
        free(m->node);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
}

void agent_metrics_start(AgentMetrics *m, AgentStart result, double seconds) {
        if (!m || result >= _AGENT_START_MAX)
                return;
        pthread_mutex_lock(&m->mu);
        m->starts[result]++;
        if (result == AGENT_START_OK && seconds >= 0)
                kv_metrics_observe(m->start_b, start_le, ELEMENTSOF(start_le), &m->start_n, &m->start_sum, seconds);
        pthread_mutex_unlock(&m->mu);
}

void agent_metrics_stop(AgentMetrics *m, bool ok) {
        if (!m)
                return;
        pthread_mutex_lock(&m->mu);
        m->stops[ok]++;
        pthread_mutex_unlock(&m->mu);
}

void agent_metrics_pods(AgentMetrics *m, const char *const *names, const size_t *counts, size_t n_states) {
        if (!m)
                return;
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < n_states && i < MAX_STATES; i++) {
                if (i >= m->n_states || strcmp(m->states[i], names[i]) != 0) {
                        char *s = strdup(names[i]);
                        if (!s)
                                break;
                        if (i < m->n_states)
                                free(m->states[i]);
                        m->states[i] = s;
                }
                m->counts[i] = counts[i];
                if (i >= m->n_states)
                        m->n_states = i + 1;
        }
        pthread_mutex_unlock(&m->mu);
}

char *agent_metrics_render(AgentMetrics *m, KubeEventStats ev) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        pthread_mutex_lock(&m->mu);
        kv_metrics_family(f, "kvnet_node_info", "gauge", "kvnet-node's node.");
        fputs("kvnet_node_info{node=\"", f);
        kv_metrics_label(f, m->node);
        fputs("\"} 1\n", f);
        kv_metrics_family(f, "kvnet_node_pods", "gauge", "The node's launcher pods by the agent's state of them.");
        for (size_t i = 0; i < m->n_states; i++)
                fprintf(f, "kvnet_node_pods{state=\"%s\"} %zu\n", m->states[i], m->counts[i]);
        kv_metrics_family(f, "kvnet_node_pod_starts_total", "counter",
                          "Launcher pod starts by result (retry: failed with \"try again\", tried again).");
        static const char *const results[] = { "ok", "failed", "retry" };
        for (size_t i = 0; i < _AGENT_START_MAX; i++)
                fprintf(f, "kvnet_node_pod_starts_total{result=\"%s\"} %llu\n", results[i],
                        (unsigned long long) m->starts[i]);
        kv_metrics_family(f, "kvnet_node_pod_start_duration_seconds", "histogram",
                          "Seconds from a launcher pod's arrival on the node to its VM running.");
        kv_metrics_histogram(f, "kvnet_node_pod_start_duration_seconds", "", start_le, m->start_b,
                             ELEMENTSOF(start_le), m->start_n, m->start_sum);
        kv_metrics_family(f, "kvnet_node_pod_stops_total", "counter", "Launcher pod stops by result.");
        fprintf(f, "kvnet_node_pod_stops_total{result=\"ok\"} %llu\n", (unsigned long long) m->stops[1]);
        fprintf(f, "kvnet_node_pod_stops_total{result=\"failed\"} %llu\n", (unsigned long long) m->stops[0]);
        pthread_mutex_unlock(&m->mu);
        kube_event_stats_write(f, "kvnet_node_events_total", ev);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
