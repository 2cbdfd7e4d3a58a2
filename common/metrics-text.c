/* SPDX-License-Identifier: Apache-2.0 */
#include "common/metrics-text.h"

void kv_metrics_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void kv_metrics_label(FILE *f, const char *s) {
        for (; s && *s; s++) {
                if (*s == '\\' || *s == '"') {
                        fputc('\\', f);
                        fputc(*s, f);
                } else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

void kv_metrics_observe(uint64_t *buckets, const double *le, size_t n, uint64_t *count, double *sum, double v) {
        for (size_t i = 0; i < n; i++)
                buckets[i] += v <= le[i];
        (*count)++;
        *sum += v;
}

void kv_metrics_histogram(FILE *f, const char *name, const char *labels, const double *le, const uint64_t *buckets,
                          size_t n, uint64_t count, double sum) {
        const char *sep = labels[0] ? "," : "", *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, le[i],
                        (unsigned long long) buckets[i]);
        fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long) count);
        fprintf(f, "%s_sum%s%s%s %.6f\n", name, open, labels, close, sum);
        fprintf(f, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long) count);
}
