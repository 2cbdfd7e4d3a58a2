/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes Events about a pod, shaped as client-go's event recorder makes them for Multus (kube/event.c's
 * kube_event_new(): named "<pod>.<hex nanoseconds>" in the pod's namespace, involvedObject the pod, count 1, first
 * and last timestamps the same second, source and reportingComponent the recorder's component). Pure: the plugin
 * posts the text (plugin/events.c). */
#include "common/json-util.h"
#include "kube/event.h"
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

int mc_event_format(const McEvent *ev, char **ret) {
        if (!ev->namespace_ || !ev->pod_name || !ev->type || !ev->reason || !ev->message || !ev->component)
                return -EINVAL;
        KubeObjectRef pod = { .api_version = "v1", .kind = "Pod", .namespace_ = ev->namespace_, .name = ev->pod_name,
                              .uid = ev->pod_uid };
        _cleanup_json_ json_t *o = kube_event_new(&pod, ev->component, NULL, ev->type, ev->reason, ev->message,
                                                  ev->time_ns);
        if (!o)
                return -ENOMEM;
        char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
