/* SPDX-License-Identifier: Apache-2.0 */
/* A requested network's runtimeConfig, as Multus builds it for a NAD delegate: ips, mac, portMappings,
 * bandwidth, infinibandGUID, deviceID (only what the selection gives). */
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

static json_t *strv_json(char *const *v, size_t n) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0)
                        return json_decref(a), NULL;
        return a;
}

static json_t *port_mappings_json(const McSelection *s) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < s->n_port_mappings; i++) {
                const McPortMapping *m = &s->port_mappings[i];
                json_t *o = json_pack("{s:I,s:I}", "hostPort", (json_int_t) m->host_port, "containerPort",
                                      (json_int_t) m->container_port);
                if (o && m->protocol)
                        json_object_set_new(o, "protocol", json_string(m->protocol));
                if (o && m->host_ip)
                        json_object_set_new(o, "hostIP", json_string(m->host_ip));
                if (!o || json_array_append_new(a, o) < 0)
                        return json_decref(a), NULL;
        }
        return a;
}

static json_t *bandwidth_json(const McBandwidth *b) {
        return json_pack("{s:I,s:I,s:I,s:I}", "ingressRate", (json_int_t) b->ingress_rate, "ingressBurst",
                         (json_int_t) b->ingress_burst, "egressRate", (json_int_t) b->egress_rate, "egressBurst",
                         (json_int_t) b->egress_burst);
}

static int push(McCap **v, size_t *n, const char *key, json_t *value) {
        if (!value)
                return -ENOMEM;
        int r = mc_caps_push(v, n, key, value);
        json_decref(value);
        return r;
}

int mc_selection_caps(const McSelection *s, McCap **ret, size_t *ret_n) {
        McCap *v = NULL;
        size_t n = 0;
        int r = 0;
        if (r >= 0 && s->n_port_mappings > 0)
                r = push(&v, &n, "portMappings", port_mappings_json(s));
        if (r >= 0 && s->has_bandwidth)
                r = push(&v, &n, "bandwidth", bandwidth_json(&s->bandwidth));
        if (r >= 0 && s->n_ips > 0)
                r = push(&v, &n, "ips", strv_json(s->ips, s->n_ips));
        if (r >= 0 && s->mac)
                r = push(&v, &n, "mac", json_string(s->mac));
        if (r >= 0 && s->infiniband_guid)
                r = push(&v, &n, "infinibandGUID", json_string(s->infiniband_guid));
        if (r >= 0 && s->device_id)
                r = push(&v, &n, "deviceID", json_string(s->device_id));
        if (r < 0) {
                mc_caps_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
