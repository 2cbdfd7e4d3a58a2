/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/table.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/kstatus.h"
#include "common/util.h"

/* A column: a dotted path into the object (a number is an array index) or a function of the object;
 * dflt is shown when the value is missing. Priority 1: only with `kubectl get -o wide`. jsonpath: what a CRD's
 * printer column says for a function (a path column's is made from its path). */
typedef struct Column {
        const char *name, *type, *path;
        json_t *(*fn)(json_t *obj);
        int priority;
        const char *dflt;
        const char *jsonpath;
} Column;

/* ---- kube-apiserver's printers for pods and nodes (a subset: kvnet's pods have one container) ---- */

#define get_path ctl_json_path

static json_t *pod_ready(json_t *pod) {
        size_t i, ready = 0;
        json_t *cs;
        json_array_foreach(get_path(pod, "status.containerStatuses"), i, cs) {
                ready += json_is_true(json_object_get(cs, "ready"));
        }
        return json_sprintf("%zu/%zu", ready, json_array_size(get_path(pod, "spec.containers")));
}

static json_t *pod_status(json_t *pod) {
        const char *v = json_string_value(get_path(pod, "status.reason"));
        if (!v)
                v = json_string_value(get_path(pod, "status.phase"));
        if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp"))
                v = "Terminating";
        return json_string(v ? v : "Unknown");
}

static json_t *pod_restarts(json_t *pod) {
        size_t i;
        json_int_t n = 0;
        json_t *cs;
        json_array_foreach(get_path(pod, "status.containerStatuses"), i, cs) {
                n += json_integer_value(json_object_get(cs, "restartCount"));
        }
        return json_integer(n);
}

static json_t *node_status(json_t *node) {
        const char *st = "Unknown";
        size_t i;
        json_t *c;
        json_array_foreach(get_path(node, "status.conditions"), i, c) {
                if (streq_ptr(json_string_value(json_object_get(c, "type")), "Ready"))
                        st = streq_ptr(json_string_value(json_object_get(c, "status")), "True") ? "Ready" : "NotReady";
        }
        bool cordoned = json_is_true(get_path(node, "spec.unschedulable"));
        return json_sprintf("%s%s", st, cordoned ? ",SchedulingDisabled" : "");
}

/* KubeVirt's VMI columns READY, LIVE-MIGRATABLE and PAUSED: a condition's status. */
static json_t *vmi_condition(json_t *vmi, const char *type) {
        json_t *c = kstatus_condition(get_path(vmi, "status"), type);
        const char *st = json_string_value(json_object_get(c, "status"));
        return st ? json_string(st) : json_null();
}

static json_t *vmi_ready(json_t *vmi) {
        return vmi_condition(vmi, "Ready");
}

static json_t *vmi_live_migratable(json_t *vmi) {
        return vmi_condition(vmi, "LiveMigratable");
}

static json_t *vmi_paused(json_t *vmi) {
        return vmi_condition(vmi, "Paused");
}

static json_t *node_roles(json_t *node) {
        static const char prefix[] = "node-role.kubernetes.io/";
        char buf[256] = "";
        const char *k;
        json_t *v;
        json_object_foreach(get_path(node, "metadata.labels"), k, v) {
                if (strncmp(k, prefix, sizeof prefix - 1) != 0 || !k[sizeof prefix - 1])
                        continue;
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof buf - n, "%s%s", n ? "," : "", k + sizeof prefix - 1);
        }
        return json_string(buf[0] ? buf : "<none>");
}

static json_t *node_internal_ip(json_t *node) {
        size_t i;
        json_t *a;
        json_array_foreach(get_path(node, "status.addresses"), i, a) {
                if (streq_ptr(json_string_value(json_object_get(a, "type")), "InternalIP"))
                        return json_incref(json_object_get(a, "address"));
        }
        return json_string("<none>");
}

static json_t *age_of(const char *ts);

/* kube-apiserver's event printer: LAST SEEN (lastTimestamp, else eventTime, else creation), OBJECT kind/name */
static json_t *event_last_seen(json_t *ev) {
        const char *ts = json_string_value(json_object_get(ev, "lastTimestamp"));
        if (!ts)
                ts = json_string_value(json_object_get(ev, "eventTime"));
        if (!ts)
                ts = json_string_value(get_path(ev, "metadata.creationTimestamp"));
        char buf[32];
        snprintf(buf, sizeof buf, "%.19sZ", ts ? ts : ""); /* a MicroTime's fraction dropped */
        return age_of(ts ? buf : NULL);
}

static json_t *event_object(json_t *ev) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s/%s", json_string_value(get_path(ev, "involvedObject.kind")) ?: "",
                 json_string_value(get_path(ev, "involvedObject.name")) ?: "");
        char *k = buf;
        for (; *k && *k != '/'; k++)
                *k = (char) tolower((unsigned char) *k);
        return json_string(buf);
}

/* status.ips joined by commas, as kubectl shows a list */
static json_t *ipamclaim_ips(json_t *claim) {
        char buf[256] = "";
        size_t i, off = 0;
        json_t *ip;
        json_array_foreach(get_path(claim, "status.ips"), i, ip) {
                if (json_is_string(ip) && off < sizeof buf)
                        off += (size_t) snprintf(buf + off, sizeof buf - off, "%s%s", off ? "," : "", json_string_value(ip));
        }
        return json_string(off ? buf : "<none>");
}

#define AGE { "Age", "date", "metadata.creationTimestamp", NULL, 0, NULL }

static const struct {
        const char *kind;
        Column cols[10];
} tables[] = {
        { "VirtualMachine",
          { AGE, { "Status", "string", "status.printableStatus" }, { "Ready", "string", "status.ready" } } },
        { "VirtualMachineInstance",
          { AGE,
            { "Phase", "string", "status.phase" },
            { "IP", "string", "status.interfaces.0.ipAddress" },
            { "NodeName", "string", "status.nodeName" },
            { "Ready", "string", NULL, vmi_ready, 0, NULL, ".status.conditions[?(@.type=='Ready')].status" },
            { "Live-Migratable", "string", NULL, vmi_live_migratable, 1, NULL,
              ".status.conditions[?(@.type=='LiveMigratable')].status" },
            { "Paused", "string", NULL, vmi_paused, 1, NULL, ".status.conditions[?(@.type=='Paused')].status" } } },
        { "VirtualMachineInstanceMigration",
          { { "Phase", "string", "status.phase" }, { "VMI", "string", "spec.vmiName" } } },
        { "NetworkAttachmentDefinition", { AGE } },
        { "IPAMClaim",
          { { "Network", "string", "spec.network" },
            { "Interface", "string", "spec.interface", NULL, 0, "<none>" },
            { "IPs", "string", NULL, ipamclaim_ips, 0, NULL, ".status.ips" },
            AGE,
            { "Owner-Pod", "string", "status.ownerPod", NULL, 1, "<none>" } } },
        /* kvnet's cluster-wide claims: only a CRD (controller/crd.c), not served by the embedded API */
        { "NetworkClaim",
          { { "Network", "string", "spec.network" },
            { "Holder", "string", "spec.holder" },
            { "Attached", "boolean", "spec.attached" },
            { "Target", "string", "spec.target", NULL, 1 },
            AGE } },
        { "Pod",
          { { "Ready", "string", NULL, pod_ready },
            { "Status", "string", NULL, pod_status },
            { "Restarts", "integer", NULL, pod_restarts },
            AGE,
            { "IP", "string", "status.podIP", NULL, 1, "<none>" },
            { "Node", "string", "spec.nodeName", NULL, 1, "<none>" },
            { "Nominated Node", "string", "status.nominatedNodeName", NULL, 1, "<none>" },
            { "Readiness Gates", "string", "spec.readinessGates", NULL, 1, "<none>" } } },
        { "Event",
          { { "Last Seen", "string", NULL, event_last_seen },
            { "Type", "string", "type" },
            { "Reason", "string", "reason" },
            { "Object", "string", NULL, event_object },
            { "Message", "string", "message" } } },
        { "Node",
          { { "Status", "string", NULL, node_status },
            { "Roles", "string", NULL, node_roles },
            AGE,
            { "Version", "string", "status.nodeInfo.kubeletVersion" },
            { "Internal-IP", "string", NULL, node_internal_ip, 1 },
            { "External-IP", "string", "status.externalIP", NULL, 1, "<none>" },
            { "OS-Image", "string", "status.nodeInfo.osImage", NULL, 1, "<unknown>" },
            { "Kernel-Version", "string", "status.nodeInfo.kernelVersion", NULL, 1, "<unknown>" },
            { "Container-Runtime", "string", "status.nodeInfo.containerRuntimeVersion", NULL, 1, "<unknown>" } } },
};

static json_t *age_of(const char *ts) {
        struct tm tm = {};
        if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm))
                return json_string("<unknown>");
        long long d = (long long) (time(NULL) - timegm(&tm));
        char buf[32];
        if (d < 0)
                d = 0;
        if (d < 120)
                snprintf(buf, sizeof buf, "%llds", d);
        else if (d < 600)
                snprintf(buf, sizeof buf, "%lldm%llds", d / 60, d % 60);
        else if (d < 3 * 3600)
                snprintf(buf, sizeof buf, "%lldm", d / 60);
        else if (d < 8 * 3600)
                snprintf(buf, sizeof buf, "%lldh%lldm", d / 3600, d % 3600 / 60);
        else if (d < 48 * 3600)
                snprintf(buf, sizeof buf, "%lldh", d / 3600);
        else if (d < 8 * 86400)
                snprintf(buf, sizeof buf, "%lldd%lldh", d / 86400, d % 86400 / 3600);
        else
                snprintf(buf, sizeof buf, "%lldd", d / 86400);
        return json_string(buf);
}

static json_t *cell(json_t *obj, const Column *col) {
        if (col->fn)
                return col->fn(obj);
        json_t *v = get_path(obj, col->path);
        if (json_is_boolean(v))
                return json_string(json_is_true(v) ? "True" : "False");
        if (streq(col->path, "metadata.creationTimestamp"))
                return age_of(json_string_value(v));
        if (v && !json_is_object(v) && !json_is_array(v))
                return json_incref(v);
        return col->dflt ? json_string(col->dflt) : json_null();
}

json_t *ctl_table(const CtlResource *res, json_t *items, const char *api_version, const char *include, const char *rv) {
        const Column *cols = NULL;
        for (size_t i = 0; i < ELEMENTSOF(tables); i++)
                if (streq(tables[i].kind, res->kind))
                        cols = tables[i].cols;
        json_t *defs = json_pack("[{s:s,s:s,s:s,s:s,s:i}]", "name", "Name", "type", "string", "format", "name",
                                 "description", "Name of the object", "priority", 0);
        for (size_t k = 0; defs && cols && k < ELEMENTSOF(tables[0].cols) && cols[k].name; k++)
                json_array_append_new(defs, json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", cols[k].name, "type",
                                                      cols[k].type, "format", "", "description",
                                                      cols[k].path ? cols[k].path : cols[k].name, "priority",
                                                      cols[k].priority));
        json_t *rows = json_array();
        size_t i;
        json_t *o;
        json_array_foreach(items, i, o) {
                json_t *cells = json_array();
                json_array_append_new(cells, json_string(json_string_value(
                                                     json_object_get(json_object_get(o, "metadata"), "name"))));
                for (size_t k = 0; cols && k < ELEMENTSOF(tables[0].cols) && cols[k].name; k++)
                        json_array_append_new(cells, cell(o, &cols[k]));
                json_t *row = json_pack("{s:o}", "cells", cells);
                if (!streq_ptr(include, "None"))
                        json_object_set_new(row, "object",
                                            streq_ptr(include, "Object")
                                                    ? json_incref(o)
                                                    : json_pack("{s:s,s:s,s:O}", "kind", "PartialObjectMetadata",
                                                                "apiVersion", api_version, "metadata",
                                                                json_object_get(o, "metadata")));
                json_array_append_new(rows, row);
        }
        return json_pack("{s:s,s:s,s:{s:s},s:o,s:o}", "kind", "Table", "apiVersion", api_version, "metadata",
                         "resourceVersion", rv, "columnDefinitions", defs ? defs : json_array(), "rows",
                         rows ? rows : json_array());
}

json_t *ctl_table_crd_columns(const char *kind) {
        json_t *cols = json_array();
        for (size_t i = 0; cols && i < ELEMENTSOF(tables); i++) {
                if (!streq(tables[i].kind, kind))
                        continue;
                for (const Column *c = tables[i].cols; c < tables[i].cols + ELEMENTSOF(tables[i].cols) && c->name; c++) {
                        char path[256] = "";
                        size_t n = 0;
                        if (c->jsonpath)
                                snprintf(path, sizeof path, "%s", c->jsonpath);
                        else /* status.interfaces.0.ipAddress -> .status.interfaces[0].ipAddress */
                                for (const char *seg = c->path; seg && *seg && n < sizeof path;) {
                                        size_t len = strcspn(seg, ".");
                                        bool index = strspn(seg, "0123456789") == len;
                                        n += (size_t) snprintf(path + n, sizeof path - n, index ? "[%.*s]" : ".%.*s",
                                                               (int) len, seg);
                                        seg += len + (seg[len] == '.');
                                }
                        json_t *col = json_pack("{s:s,s:s,s:s}", "name", c->name, "type", c->type, "jsonPath", path);
                        if (col && c->priority)
                                json_object_set_new(col, "priority", json_integer(c->priority));
                        if (!col || json_array_append_new(cols, col) < 0) {
                                json_decref(cols);
                                return NULL;
                        }
                }
        }
        return cols;
}
