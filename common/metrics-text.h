/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text format (0.0.4) as kvnet's metrics pages write it (docs/metrics.md): family headers, escaped
 * label values, histograms. No I/O of its own (common/metrics-http.c serves the pages), so that the code counting
 * the figures (netd's handoff, the agent) links no HTTP server. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "# HELP name help\n# TYPE name type\n" */
void kv_metrics_family(FILE *f, const char *name, const char *type, const char *help);
/* A label value, escaped as the text format wants (backslash, double quote, newline). */
void kv_metrics_label(FILE *f, const char *s);
/* One observation v of a histogram: buckets[i] (cumulative) counts v <= le[i], then the count and the sum. */
void kv_metrics_observe(uint64_t *buckets, const double *le, size_t n, uint64_t *count, double *sum, double v);
/* A histogram's samples: name_bucket{labels,le="..."} for each bound and +Inf, name_sum and name_count; labels ""
 * or 'k="v",...' (already escaped). */
void kv_metrics_histogram(FILE *f, const char *name, const char *labels, const double *le, const uint64_t *buckets,
                          size_t n, uint64_t count, double sum);
