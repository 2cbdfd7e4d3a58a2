/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/metrics-text.h"
#include "controller/reconciler.h"

#define VERSION "0.1"
#define NONE "<none>" /* KubeVirt's value of a label the VMI does not set */

static const double pass_le[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
/* a VMIM's phases, seconds from its creation (KubeVirt's phase transition buckets start at half a second) */
static const double phase_le[] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600 };
/* a migration's outage, seconds */
static const double outage_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };

#define MAX_LE 14
typedef struct Hist {
        uint64_t b[MAX_LE], count;
        double sum;
} Hist;

static void observe(Hist *h, const double *le, size_t n, double v) {
        kv_metrics_observe(h->b, le, n, &h->count, &h->sum, v);
}

static void hist_text(FILE *f, const char *name, const char *labels, const Hist *h, const double *le, size_t n) {
        kv_metrics_histogram(f, name, labels, le, h->b, n, h->count, h->sum);
}

static const char *const vmim_phases[] = { "Pending",     "Scheduling", "Scheduled", "PreparingTarget",
                                           "TargetReady", "Running",    "Succeeded", "Failed" };
#define N_PHASES ELEMENTSOF(vmim_phases)

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other" };
#define N_METHODS ELEMENTSOF(methods)
#define MAX_CODES 24 /* distinct status codes kept; more go to code "other" */

typedef struct Fn {
        char *name;
        uint64_t runs, errors;
        Hist h;
} Fn;

struct CtlMetrics {
        pthread_mutex_t mu;
        char *mode;
        Fn fns[CTL_RECONCILE_MAX];
        size_t n_fns;
        uint64_t passes;
        Hist phase[N_PHASES];
        uint64_t migrations[2]; /* failed, succeeded */
        Hist downtime, pause;
        char *gauges; /* the last pass's */
        unsigned codes[MAX_CODES];
        size_t n_codes;
        uint64_t api[N_METHODS][MAX_CODES + 1]; /* [method][code index; MAX_CODES: other] */
};

int ctl_metrics_new(const char *mode, const char *const *names, size_t n, CtlMetrics **ret) {
        if (n > CTL_RECONCILE_MAX)
                return -EINVAL;
        CtlMetrics *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->mu, NULL);
        m->n_fns = n;
        bool ok = (m->mode = strdup(mode)) != NULL;
        for (size_t i = 0; i < n; i++)
                ok = ok && (m->fns[i].name = strdup(names[i])) != NULL;
        if (!ok) {
                ctl_metrics_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

CtlMetrics *ctl_metrics_free(CtlMetrics *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_fns; i++)
                free(m->fns[i].name);
        free(m->mode);
        free(m->gauges);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
}

void ctl_metrics_reconcile(CtlMetrics *m, size_t i, int result, uint64_t usec) {
        if (!m || i >= m->n_fns)
                return;
        pthread_mutex_lock(&m->mu);
        m->fns[i].runs++;
        m->fns[i].errors += result < 0;
        observe(&m->fns[i].h, pass_le, ELEMENTSOF(pass_le), (double) usec / 1e6);
        if (i == 0)
                m->passes++;
        pthread_mutex_unlock(&m->mu);
}

void ctl_metrics_vmim_phase(CtlMetrics *m, const char *phase, double since_creation) {
        if (!m || !phase || since_creation < 0)
                return;
        for (size_t i = 0; i < N_PHASES; i++)
                if (streq(vmim_phases[i], phase)) {
                        pthread_mutex_lock(&m->mu);
                        observe(&m->phase[i], phase_le, ELEMENTSOF(phase_le), since_creation);
                        pthread_mutex_unlock(&m->mu);
                }
}

void ctl_metrics_migration_ended(CtlMetrics *m, bool succeeded, double downtime, double pause) {
        if (!m)
                return;
        pthread_mutex_lock(&m->mu);
        m->migrations[succeeded]++;
        if (downtime >= 0)
                observe(&m->downtime, outage_le, ELEMENTSOF(outage_le), downtime);
        if (pause >= 0)
                observe(&m->pause, outage_le, ELEMENTSOF(outage_le), pause);
        pthread_mutex_unlock(&m->mu);
}

void ctl_metrics_api_request(CtlMetrics *m, const char *method, unsigned code) {
        size_t mi = 0, ci;
        if (!m)
                return;
        while (mi < N_METHODS - 1 && !streq_ptr(methods[mi], method))
                mi++;
        pthread_mutex_lock(&m->mu);
        for (ci = 0; ci < m->n_codes && m->codes[ci] != code; ci++)
                ;
        if (ci == m->n_codes && ci < MAX_CODES)
                m->codes[m->n_codes++] = code;
        m->api[mi][ci < MAX_CODES ? ci : MAX_CODES]++;
        pthread_mutex_unlock(&m->mu);
}

/* ---- the gauges, from the store */

static const char *str_at(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static const char *annotation(json_t *obj, const char *key) {
        const char *v = str_at(json_object_get(json_object_get(obj, "metadata"), "annotations"), key);
        return v && *v ? v : NONE;
}

/* k="v" pairs of kv (keys and values in turn, n entries: twice the pairs), comma-separated, values escaped; a NULL
 * value is "" */
static void pairs(FILE *f, const char *const *kv, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2) {
                fprintf(f, "%s%s=\"", i ? "," : "", kv[i]);
                kv_metrics_label(f, kv[i + 1] ? kv[i + 1] : "");
                fputc('"', f);
        }
}

/* KubeVirt's VMI labels: name, namespace, node, phase; os, workload and flavor from the template's annotations,
 * the instance type and preference the VM named (into kv, 18 entries) */
static void vmi_labels(json_t *vmi, const char *kv[static 18]) {
        json_t *st = json_object_get(vmi, "status");
        const char *it = annotation(vmi, "kubevirt.io/instancetype-name");
        if (streq(it, NONE))
                it = annotation(vmi, "kubevirt.io/cluster-instancetype-name");
        const char *pref = annotation(vmi, "kubevirt.io/preference-name");
        if (streq(pref, NONE))
                pref = annotation(vmi, "kubevirt.io/cluster-preference-name");
        const char *v[18] = { "name",          ctl_md(vmi, "name"),
                              "namespace",     ctl_md(vmi, "namespace"),
                              "node",          str_at(st, "nodeName"),
                              "phase",         str_at(st, "phase"),
                              "os",            annotation(vmi, "vm.kubevirt.io/os"),
                              "workload",      annotation(vmi, "vm.kubevirt.io/workload"),
                              "flavor",        annotation(vmi, "vm.kubevirt.io/flavor"),
                              "instance_type", it,
                              "preference",    pref };
        memcpy(kv, v, sizeof v);
}

static void vmis(FILE *f, CtlStore *s) {
        _cleanup_json_ json_t *items = ctl_store_items(s, ctl_resource_find("kubevirt.io", "v1",
                                                                            "virtualmachineinstances"));
        _cleanup_json_ json_t *counts = json_object();
        size_t i;
        json_t *vmi;
        kv_metrics_family(f, "kubevirt_vmi_info", "gauge", "Information about VirtualMachineInstances.");
        json_array_foreach(items, i, vmi) {
                const char *kv[18];
                vmi_labels(vmi, kv);
                fputs("kubevirt_vmi_info{", f);
                pairs(f, kv, 18);
                fputs("} 1\n", f);
                /* the same labels but name and namespace, counted */
                char *key = NULL;
                size_t klen = 0;
                FILE *k = open_memstream(&key, &klen);
                if (!k)
                        continue;
                pairs(k, kv + 4, 14);
                if (fclose(k) == 0 && counts)
                        json_object_set_new(counts, key,
                                            json_integer(json_integer_value(json_object_get(counts, key)) + 1));
                free(key);
        }
        kv_metrics_family(f, "kubevirt_vmi_phase_count", "gauge",
                          "VirtualMachineInstances by node, phase, os, workload, flavor, instance type and "
                          "preference.");
        const char *key;
        json_t *v;
        json_object_foreach(counts, key, v) {
                fprintf(f, "kubevirt_vmi_phase_count{%s} %lld\n", key, (long long) json_integer_value(v));
        }
}

static void vms(FILE *f, CtlStore *s) {
        _cleanup_json_ json_t *items = ctl_store_items(s, ctl_resource_find("kubevirt.io", "v1", "virtualmachines"));
        size_t i;
        json_t *vm;
        kv_metrics_family(f, "kubevirt_vm_info", "gauge", "Information about VirtualMachines.");
        json_array_foreach(items, i, vm) {
                const char *kv[] = { "name", ctl_md(vm, "name"), "namespace", ctl_md(vm, "namespace"), "status",
                                     str_at(json_object_get(vm, "status"), "printableStatus") };
                fputs("kubevirt_vm_info{", f);
                pairs(f, kv, ELEMENTSOF(kv));
                fputs("} 1\n", f);
        }
}

static void vmims(FILE *f, CtlStore *s) {
        _cleanup_json_ json_t *items =
                ctl_store_items(s, ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations"));
        /* KubeVirt's grouping: running is every phase from Scheduled to Running */
        uint64_t unset = 0, pending = 0, scheduling = 0, running = 0;
        size_t i;
        json_t *m;
        json_array_foreach(items, i, m) {
                const char *p = str_at(json_object_get(m, "status"), "phase");
                if (!p || !*p)
                        unset++;
                else if (streq(p, "Pending"))
                        pending++;
                else if (streq(p, "Scheduling"))
                        scheduling++;
                else if (!streq(p, "Succeeded") && !streq(p, "Failed"))
                        running++;
        }
        const struct {
                const char *name, *help;
                uint64_t n;
        } g[] = {
                { "kubevirt_vmi_migrations_in_unset_phase", "VMIMs the controller has not taken up yet.", unset },
                { "kubevirt_vmi_migrations_in_pending_phase", "VMIMs in phase Pending.", pending },
                { "kubevirt_vmi_migrations_in_scheduling_phase", "VMIMs in phase Scheduling.", scheduling },
                { "kubevirt_vmi_migrations_in_running_phase",
                  "VMIMs in phases Scheduled, PreparingTarget, TargetReady and Running.", running },
        };
        for (size_t k = 0; k < ELEMENTSOF(g); k++) {
                kv_metrics_family(f, g[k].name, "gauge", g[k].help);
                fprintf(f, "%s %llu\n", g[k].name, (unsigned long long) g[k].n);
        }
        for (int ok = 1; ok >= 0; ok--) {
                const char *name = ok ? "kubevirt_vmi_migration_succeeded" : "kubevirt_vmi_migration_failed";
                kv_metrics_family(f, name, "gauge",
                                  ok ? "1 for each VMIM that succeeded." : "1 for each VMIM that failed.");
                json_array_foreach(items, i, m) {
                        if (!streq_ptr(str_at(json_object_get(m, "status"), "phase"), ok ? "Succeeded" : "Failed"))
                                continue;
                        const char *kv[] = { "vmi", str_at(json_object_get(m, "spec"), "vmiName"), "vmim",
                                             ctl_md(m, "name"), "namespace", ctl_md(m, "namespace") };
                        fprintf(f, "%s{", name);
                        pairs(f, kv, ELEMENTSOF(kv));
                        fputs("} 1\n", f);
                }
        }
}

static void objects(FILE *f, CtlStore *s) {
        kv_metrics_family(f, "kvnet_controller_objects", "gauge", "Objects the controller holds, by resource.");
        for (size_t i = 0; i < ctl_n_resources; i++) {
                _cleanup_json_ json_t *items = ctl_store_items(s, &ctl_resources[i]);
                char q[128];
                fprintf(f, "kvnet_controller_objects{resource=\"%s\"} %zu\n", ctl_resource_qname(&ctl_resources[i], q),
                        json_array_size(items));
        }
}

void ctl_metrics_snapshot(CtlMetrics *m, CtlStore *s) {
        char *buf = NULL;
        size_t len = 0;
        if (!m)
                return;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return;
        vmis(f, s);
        vms(f, s);
        vmims(f, s);
        objects(f, s);
        if (fclose(f) != 0) {
                free(buf);
                return;
        }
        pthread_mutex_lock(&m->mu);
        free(m->gauges);
        m->gauges = buf;
        pthread_mutex_unlock(&m->mu);
}

/* ---- the text */

char *ctl_metrics_render(CtlMetrics *m, KubeEventStats ev) {
        char *buf = NULL, labels[160];
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        pthread_mutex_lock(&m->mu);
        kv_metrics_family(f, "kvnet_controller_info", "gauge", "The controller's version and mode.");
        fprintf(f, "kvnet_controller_info{version=\"%s\",mode=\"%s\"} 1\n", VERSION, m->mode);
        if (m->gauges)
                fputs(m->gauges, f);
        kv_metrics_family(f, "kvnet_controller_api_requests_total", "counter",
                          "Requests the embedded API answered, by HTTP method and status code.");
        for (size_t mi = 0; mi < N_METHODS; mi++)
                for (size_t ci = 0; ci <= MAX_CODES; ci++) {
                        if (!m->api[mi][ci])
                                continue;
                        if (ci < MAX_CODES)
                                fprintf(f, "kvnet_controller_api_requests_total{method=\"%s\",code=\"%u\"} %llu\n",
                                        methods[mi], m->codes[ci], (unsigned long long) m->api[mi][ci]);
                        else
                                fprintf(f, "kvnet_controller_api_requests_total{method=\"%s\",code=\"other\"} %llu\n",
                                        methods[mi], (unsigned long long) m->api[mi][ci]);
                }
        kv_metrics_family(f, "kvnet_controller_passes_total", "counter", "Reconcile passes over the store.");
        fprintf(f, "kvnet_controller_passes_total %llu\n", (unsigned long long) m->passes);
        kv_metrics_family(f, "kvnet_controller_reconcile_total", "counter",
                          "Runs of each controller, and how many ended in an error of the store or the API.");
        for (size_t i = 0; i < m->n_fns; i++) {
                fprintf(f, "kvnet_controller_reconcile_total{controller=\"%s\",result=\"ok\"} %llu\n", m->fns[i].name,
                        (unsigned long long) (m->fns[i].runs - m->fns[i].errors));
                fprintf(f, "kvnet_controller_reconcile_total{controller=\"%s\",result=\"error\"} %llu\n",
                        m->fns[i].name, (unsigned long long) m->fns[i].errors);
        }
        kv_metrics_family(f, "kvnet_controller_reconcile_duration_seconds", "histogram",
                          "Time each controller took in a pass.");
        for (size_t i = 0; i < m->n_fns; i++) {
                snprintf(labels, sizeof labels, "controller=\"%s\"", m->fns[i].name);
                hist_text(f, "kvnet_controller_reconcile_duration_seconds", labels, &m->fns[i].h, pass_le,
                          ELEMENTSOF(pass_le));
        }
        kv_metrics_family(f, "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds", "histogram",
                          "Seconds from a VMIM's creation to each phase it reached.");
        for (size_t i = 0; i < N_PHASES; i++) {
                if (!m->phase[i].count)
                        continue;
                snprintf(labels, sizeof labels, "phase=\"%s\"", vmim_phases[i]);
                hist_text(f, "kubevirt_vmi_migration_phase_transition_time_from_creation_seconds", labels,
                          &m->phase[i], phase_le, ELEMENTSOF(phase_le));
        }
        kv_metrics_family(f, "kvnet_migrations_total", "counter", "Migrations that ended, by result.");
        fprintf(f, "kvnet_migrations_total{result=\"succeeded\"} %llu\n", (unsigned long long) m->migrations[1]);
        fprintf(f, "kvnet_migrations_total{result=\"failed\"} %llu\n", (unsigned long long) m->migrations[0]);
        kv_metrics_family(f, "kvnet_migration_qemu_downtime_seconds", "histogram",
                          "QEMU's downtime of each completed migration, as the source node reported it.");
        hist_text(f, "kvnet_migration_qemu_downtime_seconds", "", &m->downtime, outage_le, ELEMENTSOF(outage_le));
        kv_metrics_family(f, "kvnet_migration_guest_pause_seconds", "histogram",
                          "The guest's pause in each completed migration (network outage), as the nodes measured it.");
        hist_text(f, "kvnet_migration_guest_pause_seconds", "", &m->pause, outage_le, ELEMENTSOF(outage_le));
        pthread_mutex_unlock(&m->mu);
        kube_event_stats_write(f, "kvnet_controller_events_total", ev);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
