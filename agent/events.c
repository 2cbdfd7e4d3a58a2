/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/log.h"

#define COMPONENT "kvnet-node"

/* ---- what to tell */

static const char *str_at(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static int add(json_t *list, const char *type, const char *reason, const char *msg) {
        return json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "type", type, "reason", reason, "message", msg));
}

/* "eth0 10.88.0.2 fd00::2 (MAC 02:00:00:00:00:01), net1 10.77.0.5 (MAC ...)": the interfaces that have an address,
 * or "" when none has one. */
static void interfaces_text(json_t *st, char *buf, size_t n) {
        size_t i, j, k = 0;
        json_t *ifc, *ip;
        buf[0] = '\0';
        json_array_foreach(json_object_get(st, "interfaces"), i, ifc) {
                json_t *ips = json_object_get(ifc, "ipAddresses");
                const char *one = str_at(ifc, "ipAddress"), *name = str_at(ifc, "name"), *mac = str_at(ifc, "mac");
                if (!json_array_size(ips) && !(one && *one))
                        continue;
                k += snprintf(buf + k, k < n ? n - k : 0, "%s%s", k ? ", " : "", name ? name : "?");
                if (json_array_size(ips)) {
                        json_array_foreach(ips, j, ip) {
                                const char *a = json_string_value(ip);
                                k += snprintf(buf + k, k < n ? n - k : 0, " %s", a ? a : "");
                        }
                } else
                        k += snprintf(buf + k, k < n ? n - k : 0, " %s", one);
                if (mac && *mac)
                        k += snprintf(buf + k, k < n ? n - k : 0, " (MAC %s)", mac);
        }
        if (k >= n && n > 4)
                memcpy(buf + n - 4, "...", 4);
}

static const char *ready_message(json_t *st) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(st, "conditions"), i, c) {
                if (streq_ptr(str_at(c, "type"), "Ready"))
                        return str_at(c, "message");
        }
        return NULL;
}

json_t *agent_vmi_events(json_t *old, json_t *new_, const char *node) {
        json_t *list = json_array();
        const char *was = str_at(old, "phase"), *is = str_at(new_, "phase");
        char a[KUBE_EVENT_MESSAGE_MAX], b[KUBE_EVENT_MESSAGE_MAX], msg[KUBE_EVENT_MESSAGE_MAX + 64];
        int r = 0;
        if (!list)
                return NULL;
        bool moved = is && !streq_ptr(was, is);
        if (moved && streq(is, "Running")) {
                snprintf(msg, sizeof msg, "VirtualMachineInstance started on node %s.", node);
                r |= add(list, "Normal", "Started", msg);
        } else if (moved && streq(is, "Succeeded"))
                r |= add(list, "Normal", "Stopped", "The VirtualMachineInstance was shut down.");
        else if (moved && streq(is, "Failed")) {
                /* why: the status's reason, else the Ready condition's message (the launcher's reason) */
                const char *why = str_at(new_, "reason");
                if (!why || !*why)
                        why = ready_message(new_);
                snprintf(msg, sizeof msg, "The VirtualMachineInstance failed%s%s", why && *why ? ": " : ".",
                         why && *why ? why : "");
                r |= add(list, "Warning", "Failed", msg);
        }
        interfaces_text(old, a, sizeof a);
        interfaces_text(new_, b, sizeof b);
        if (b[0] && !streq(a, b)) {
                snprintf(msg, sizeof msg, "Network attached on node %s: %s", node, b);
                r |= add(list, "Normal", "NetworkAttached", msg);
        }
        if (r < 0) {
                json_decref(list);
                return NULL;
        }
        return list;
}

json_t *agent_pod_events(const char *old_phase, const char *new_phase, const char *message) {
        json_t *list = json_array();
        char msg[KUBE_EVENT_MESSAGE_MAX];
        int r = 0;
        if (!list || !new_phase || streq_ptr(old_phase, new_phase))
                return list;
        if (streq(new_phase, "Running"))
                r = add(list, "Normal", "Started", "Started container compute");
        else if (streq(new_phase, "Failed")) {
                snprintf(msg, sizeof msg, "Error: %s", message && *message ? message : "the launcher failed");
                r = add(list, "Warning", "Failed", msg);
        }
        if (r < 0) {
                json_decref(list);
                return NULL;
        }
        return list;
}

/* ---- posting them */

typedef struct Post {
        AgentEvents *ev;
        struct Post *next;
        KubeOp *op;
        char ns[256], name[320];
} Post;

struct AgentEvents {
        KubeClient *kc;
        KubeEventRecorder *rec;
        Post *posts; /* in flight */
};

static void post_free(Post *p) {
        for (Post **pp = &p->ev->posts; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        free(p);
}

static void on_posted(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        Post *p = userdata;
        (void) c;
        (void) obj;
        if (r < 0) {
                log_debug("event %s/%s not written: %s", p->ns, p->name, e && e->msg[0] ? e->msg : strerror(-r));
                kube_event_forget(p->ev->rec, p->ns, p->name);
        }
        post_free(p);
}

static int write_event(void *userdata, const char *ns, const char *name, json_t *body, bool patch) {
        AgentEvents *ev = userdata;
        Post *p = calloc(1, sizeof *p);
        KvErr e = {};
        if (!p)
                return -ENOMEM;
        p->ev = ev;
        snprintf(p->ns, sizeof p->ns, "%s", ns);
        snprintf(p->name, sizeof p->name, "%s", name);
        KubeRequest req = { .verb = patch ? KUBE_PATCH : KUBE_CREATE,
                            .ref = { "v1", "events", ns, patch ? name : NULL },
                            .body = body };
        int r = kube_request(ev->kc, &req, on_posted, p, &p->op, &e);
        if (r < 0) {
                log_debug("event %s/%s not written: %s", ns, name, e.msg);
                free(p);
                return r;
        }
        p->next = ev->posts;
        ev->posts = p;
        return 0;
}

int agent_events_new(KubeClient *kc, const char *node, AgentEvents **ret) {
        AgentEvents *ev = calloc(1, sizeof *ev);
        if (!ev)
                return -ENOMEM;
        ev->kc = kc;
        int r = kube_event_recorder_new(&(KubeEventRecorderOpts){ .component = COMPONENT, .host = node }, write_event,
                                        ev, &ev->rec);
        if (r < 0) {
                free(ev);
                return r;
        }
        *ret = ev;
        return 0;
}

AgentEvents *agent_events_free(AgentEvents *ev) {
        if (!ev)
                return NULL;
        while (ev->posts) {
                kube_op_cancel(ev->posts->op);
                post_free(ev->posts);
        }
        kube_event_recorder_free(ev->rec);
        free(ev);
        return NULL;
}

void agent_events_post(AgentEvents *ev, const KubeObjectRef *obj, json_t *list) {
        size_t i;
        json_t *it;
        if (!ev)
                return;
        json_array_foreach(list, i, it) {
                int r = kube_event_record(ev->rec, obj, str_at(it, "type"), str_at(it, "reason"), "%s",
                                          str_at(it, "message"));
                if (r < 0)
                        log_debug("%s %s/%s: event %s not recorded: %s", obj->kind, obj->namespace_, obj->name,
                                  str_at(it, "reason"), strerror(-r));
        }
}

KubeEventStats agent_events_stats(AgentEvents *ev) {
        return ev ? kube_event_stats(ev->rec) : (KubeEventStats){};
}
