/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "kube/event.h"

static int write_event(void *userdata, const char *ns, const char *name, json_t *body, bool patch) {
        KvErr e = {};
        int r = ctl_store_post_event(userdata, ns, name, body, patch, &e);
        if (r < 0)
                log_debug("event %s/%s not %s: %s", ns, name, patch ? "counted" : "posted", e.msg);
        return r;
}

int ctl_events_open(CtlStore *s, const char *component, const char *host, KvErr *e) {
        KubeEventRecorder *r = NULL;
        int rc = kube_event_recorder_new(&(KubeEventRecorderOpts){ .component = component, .host = host },
                                         write_event, s, &r);
        if (rc < 0)
                return kverr_set(e, KV_ERR_INTERNAL, rc, "event recorder: %s", strerror(-rc));
        ctl_store_set_recorder(s, r);
        return 0;
}

static void vevent(CtlStore *s, const CtlResource *res, json_t *obj, const char *type, const char *reason,
                   const char *fmt, va_list ap) _printf_(6, 0);
static void vevent(CtlStore *s, const CtlResource *res, json_t *obj, const char *type, const char *reason,
                   const char *fmt, va_list ap) {
        KubeEventRecorder *rec = ctl_store_recorder(s);
        char av[128];
        if (!rec || !obj)
                return;
        KubeObjectRef ref = kube_object_ref(obj, ctl_api_version(res, NULL, av), res->kind);
        /* formatted once, by the recorder, which cuts a long message itself (at a character, with "...") */
        int r = kube_event_vrecord(rec, &ref, type, reason, fmt, ap);
        if (r < 0)
                log_debug("%s %s/%s: event %s not recorded: %s", res->kind, ref.namespace_ ? ref.namespace_ : "",
                          ref.name ? ref.name : "", reason, strerror(-r));
}

void ctl_event(CtlStore *s, const CtlResource *res, json_t *obj, const char *type, const char *reason,
               const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vevent(s, res, obj, type, reason, fmt, ap);
        va_end(ap);
}

void ctl_event_at(CtlStore *s, const CtlResource *res, const char *ns, const char *name, const char *type,
                  const char *reason, const char *fmt, ...) {
        if (!ctl_store_recorder(s))
                return;
        _cleanup_json_ json_t *obj = ctl_store_ref(s, res, ns, name);
        va_list ap;
        va_start(ap, fmt);
        vevent(s, res, obj, type, reason, fmt, ap);
        va_end(ap);
}

int ctl_events_expire(CtlStore *s, int64_t now_s, unsigned ttl_s) {
        const CtlResource *res = ctl_resource_find("", "v1", "events");
        _cleanup_json_ json_t *items = ctl_store_items(s, res);
        int n = 0;
        size_t i;
        json_t *ev;
        json_array_foreach(items, i, ev) {
                const char *last = json_string_value(json_object_get(ev, "lastTimestamp"));
                int64_t t = kstatus_parse_time(last);
                if (t < 0) /* events.k8s.io-style: eventTime, else when it was created */
                        t = kstatus_parse_time(json_string_value(json_object_get(ev, "eventTime")));
                if (t < 0)
                        t = kstatus_parse_time(ctl_md(ev, "creationTimestamp"));
                if (t < 0 || now_s - t <= (int64_t) ttl_s)
                        continue;
                json_t *out = NULL;
                KvErr e = {};
                if (ctl_store_delete(s, res, ctl_md(ev, "namespace"), ctl_md(ev, "name"), &out, &e) == 0) {
                        json_decref(out);
                        n++;
                }
        }
        return n;
}
