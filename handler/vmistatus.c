/* SPDX-License-Identifier: Apache-2.0 */
/* A VMI's status from what its node knows (handler.h): phase, node, interfaces, conditions. KubeVirt's field
 * names and values, so that `kubectl get vmi -o wide` and tools reading VMI status see what they expect. */
#include <errno.h>
#include <string.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "handler/handler.h"

static const char *launcher_phase(const HdlPodView *p) {
        return json_string_value(json_object_get(p->launcher, "phase"));
}

const char *hdl_vmi_phase(const HdlPodView *p) {
        if (p->failure)
                return "Failed";
        const char *lp = launcher_phase(p);
        if (!lp)
                return p->launcher_exited ? "Failed" : NULL;
        if (streq(lp, "Succeeded"))
                return "Succeeded";
        if (streq(lp, "Failed"))
                return "Failed";
        if (p->launcher_exited && (streq(lp, "Running") || streq(lp, "Scheduled")))
                return "Failed"; /* gone without a last word: crashed or killed */
        if (streq(lp, "Running"))
                return "Running";
        if (streq(lp, "Scheduled"))
                return "Scheduled";
        return NULL; /* WaitingForMigration, Migrated: the migration decides */
}

/* Why the VMI is not running, for its Ready condition. */
static const char *failure_message(const HdlPodView *p) {
        if (p->failure)
                return p->failure;
        const char *why = json_string_value(json_object_get(p->launcher, "reason"));
        if (why && *why)
                return why;
        return p->launcher_exited ? "the launcher exited without a status" : NULL;
}

/* "10.88.0.5/24" -> "10.88.0.5" appended to arr; IPv4 before IPv6 as KubeVirt lists them. */
static int add_addresses(json_t *arr, json_t *cni_result, bool v6) {
        size_t i;
        json_t *ip;
        json_array_foreach(json_object_get(cni_result, "ips"), i, ip) {
                const char *a = json_string_value(json_object_get(ip, "address"));
                if (!a || (strchr(a, ':') != NULL) != v6)
                        continue;
                size_t n = strcspn(a, "/");
                if (json_array_append_new(arr, json_stringn(a, n)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static const char *launcher_mac(const HdlPodView *p, const char *name) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(p->launcher, "interfaces"), i, n)
                if (streq_ptr(json_string_value(json_object_get(n, "name")), name))
                        return json_string_value(json_object_get(n, "mac"));
        return NULL;
}

static bool is_pod_network(json_t *spec, const char *name) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(spec, "networks"), i, n)
                if (streq_ptr(json_string_value(json_object_get(n, "name")), name))
                        return json_object_get(n, "pod") != NULL ||
                               json_is_true(json_object_get(json_object_get(n, "multus"), "default"));
        return false;
}

const char *hdl_multus_pod_ifname(json_t *spec, const char *name, char buf[static 16]) {
        size_t i, k = 0;
        json_t *n;
        json_array_foreach(json_object_get(spec, "networks"), i, n) {
                json_t *mu = json_object_get(n, "multus");
                if (!mu || json_is_true(json_object_get(mu, "default")))
                        continue;
                k++;
                if (streq_ptr(json_string_value(json_object_get(n, "name")), name)) {
                        snprintf(buf, 16, "net%zu", k);
                        return buf;
                }
        }
        return NULL;
}

/* The network-status entry of pod interface ifname; when it has no addresses and the network chained kvnet after a
 * third-party plugin, the guest's tap's (tap-<ifname>), which carries them (docs/chaining.md). */
static json_t *network_status_of(const HdlPodView *p, const char *ifname) {
        json_t *s = json_array_find_str(p->network_status, "interface", ifname);
        char tap[32];
        snprintf(tap, sizeof tap, "tap-%s", ifname);
        json_t *t = json_array_size(json_object_get(s, "ips")) ? NULL : json_array_find_str(p->network_status, "interface", tap);
        return t ? t : s;
}

/* Its ips (strings without prefix), IPv4 first. */
static int add_status_addresses(json_t *arr, json_t *st) {
        for (int v6 = 0; v6 < 2; v6++) {
                size_t i;
                json_t *ip;
                json_array_foreach(json_object_get(st, "ips"), i, ip) {
                        const char *a = json_string_value(ip);
                        if (a && (strchr(a, ':') != NULL) == (v6 == 1) &&
                            json_array_append_new(arr, json_stringn(a, strcspn(a, "/"))) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* status.interfaces[]: one per spec interface the domain has, the pod network's addresses on its NIC. */
static int interfaces_status(json_t *vmi, const HdlPodView *p, json_t **ret) {
        json_t *spec = json_object_get(vmi, "spec");
        _cleanup_json_ json_t *out = json_array();
        if (!out)
                return -ENOMEM;
        size_t i;
        json_t *ifc;
        json_array_foreach(json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces"),
                           i, ifc) {
                const char *name = json_string_value(json_object_get(ifc, "name"));
                const char *mac = name ? launcher_mac(p, name) : NULL;
                if (!mac)
                        continue; /* not in the domain (yet) */
                _cleanup_json_ json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "mac", mac, "infoSource",
                                                     "domain", "queueCount", 1);
                _cleanup_json_ json_t *ips = json_array();
                if (!o || !ips)
                        return -ENOMEM;
                char buf[16];
                const char *pod_if = hdl_multus_pod_ifname(spec, name, buf);
                json_t *ns = pod_if ? network_status_of(p, pod_if) : NULL;
                if (p->cni_result && is_pod_network(spec, name) &&
                    (add_addresses(ips, p->cni_result, false) < 0 || add_addresses(ips, p->cni_result, true) < 0))
                        return -ENOMEM;
                /* a Multus network's addresses from the pod's network-status, as KubeVirt reports them */
                if (ns && (add_status_addresses(ips, ns) < 0 ||
                           json_object_set_new(o, "infoSource", json_string("domain, multus-status")) < 0 ||
                           json_object_set_new(o, "podInterfaceName", json_string(pod_if)) < 0))
                        return -ENOMEM;
                if (json_array_size(ips) > 0 &&
                    (json_object_set(o, "ipAddress", json_array_get(ips, 0)) < 0 ||
                     json_object_set(o, "ipAddresses", ips) < 0))
                        return -ENOMEM;
                if (json_array_append(out, o) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static int set_phase(json_t *st, const char *phase) {
        if (streq_ptr(json_string_value(json_object_get(st, "phase")), phase))
                return 0;
        char ts[32];
        json_t *pts = json_object_get(st, "phaseTransitionTimestamps");
        if (!json_is_array(pts)) {
                pts = json_array();
                if (!pts || json_object_set_new(st, "phaseTransitionTimestamps", pts) < 0)
                        return -ENOMEM;
        }
        if (json_array_append_new(pts, json_pack("{s:s, s:s}", "phase", phase, "phaseTransitionTimestamp",
                                                 kstatus_time(0, ts))) < 0 ||
            json_object_set_new(st, "phase", json_string(phase)) < 0)
                return -ENOMEM;
        return 0;
}

int hdl_vmi_status(json_t *vmi, const HdlPodView *p, json_t **ret, bool *ret_changed, KvErr *e) {
        json_t *old = json_object_get(vmi, "status");
        _cleanup_json_ json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
        if (!st)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        HdlMigratable m;
        int r = hdl_vmi_migratable(vmi, p, &m, e);
        if (r < 0)
                return r;
        const char *phase = hdl_vmi_phase(p);
        _cleanup_json_ json_t *ifs = NULL;
        if ((phase && (r = set_phase(st, phase)) < 0) || (r = interfaces_status(vmi, p, &ifs)) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "out of memory");
        const char *now = json_string_value(json_object_get(st, "phase"));
        bool running = streq_ptr(now, "Running");
        KCondition ready = { .type = "Ready", .status = running ? "True" : "False" };
        if (!running) {
                bool failed = streq_ptr(now, "Failed");
                ready.reason = failed ? "LauncherFailed" : streq_ptr(now, "Succeeded") ? "GuestShutdown" : "GuestNotRunning";
                ready.message = failed ? failure_message(p) : NULL;
        }
        KCondition lm = { .type = "LiveMigratable", .status = m.migratable ? "True" : "False", .reason = m.reason,
                          .message = m.migratable ? NULL : m.message };
        if (json_object_set_new(st, "nodeName", json_string(p->node)) < 0 ||
            json_object_set_new(st, "activePods", json_pack("{s:s}", p->pod_uid ? p->pod_uid : "", p->node)) < 0 ||
            json_object_set(st, "interfaces", ifs) < 0 ||
            json_object_set_new(st, "migrationMethod", json_string("LiveMigration")) < 0 ||
            json_object_set_new(st, "migrationTransport", json_string("Unix")) < 0 ||
            kstatus_set_condition(st, &ready) < 0 || kstatus_set_condition(st, &lm) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        /* paused by the user (virtctl pause): KubeVirt's Paused condition while the launcher says so */
        KCondition paused = { .type = "Paused", .status = "True", .reason = "PausedByUser",
                              .message = "VMI was paused by user" };
        if (running && json_is_true(json_object_get(p->launcher, "paused"))) {
                if (kstatus_set_condition(st, &paused) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        } else
                (void) kstatus_remove_condition(st, "Paused");
        *ret_changed = !json_equal(st, old);
        *ret = TAKE_PTR(st);
        return 0;
}
