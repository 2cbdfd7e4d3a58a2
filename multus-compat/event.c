/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes Events about a pod, shaped as client-go's event recorder makes them for Multus: a core v1 Event
 * named "<pod>.<hex nanoseconds>" in the pod's namespace, involvedObject the pod, count 1, first and last
 * timestamps the same second, source and reportingComponent the recorder's component. Pure: the plugin posts
 * the text (plugin/events.c). */
#include <inttypes.h>
#include <time.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

/* "Add net1 [10.1.2.3/24 fd00::3/64] from default/blue": Go's %v of a []string is the elements space-separated
 * in brackets; without a network name the " from ..." part is left out (Multus's two Eventf forms). */
int mc_event_added_message(const char *ifname, char *const *ips, size_t n_ips, const char *network, char **ret) {
        size_t len = strlen("Add  [] from ") + strlen(ifname) + (network ? strlen(network) : 0) + 1;
        for (size_t i = 0; i < n_ips; i++)
                len += strlen(ips[i]) + 1;
        char *buf = malloc(len), *p = buf;
        if (!buf)
                return -ENOMEM;
        p = stpcpy(stpcpy(stpcpy(p, "Add "), ifname), " [");
        for (size_t i = 0; i < n_ips; i++)
                p = stpcpy(i ? stpcpy(p, " ") : p, ips[i]);
        p = stpcpy(p, "]");
        if (network && *network)
                stpcpy(stpcpy(p, " from "), network);
        *ret = buf;
        return 0;
}

static int rfc3339(uint64_t ns, char buf[static 32]) {
        time_t t = (time_t) (ns / 1000000000u);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

int mc_event_format(const McEvent *ev, char **ret) {
        char name[320], ts[32];
        if (!ev->namespace_ || !ev->pod_name || !ev->type || !ev->reason || !ev->message || !ev->component)
                return -EINVAL;
        if (rfc3339(ev->time_ns, ts) < 0)
                return -EINVAL;
        snprintf(name, sizeof name, "%s.%" PRIx64, ev->pod_name, ev->time_ns);
        _cleanup_json_ json_t *o = json_pack(
                "{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s},s:s,s:s,s:{s:s},s:s,s:s,s:i,s:s,s:n,s:s,s:s}", "apiVersion",
                "v1", "kind", "Event", "metadata", "name", name, "namespace", ev->namespace_, "involvedObject", "kind",
                "Pod", "namespace", ev->namespace_, "name", ev->pod_name, "uid", ev->pod_uid ? ev->pod_uid : "",
                "apiVersion", "v1", "reason", ev->reason, "message", ev->message, "source", "component", ev->component,
                "firstTimestamp", ts, "lastTimestamp", ts, "count", 1, "type", ev->type, "eventTime", "reportingComponent",
                ev->component, "reportingInstance", "");
        if (!o)
                return -ENOMEM;
        if (!ev->pod_uid || !*ev->pod_uid)
                json_object_del(json_object_get(o, "involvedObject"), "uid");
        char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
