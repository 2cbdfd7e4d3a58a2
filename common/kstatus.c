/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/kstatus.h"

#include "common/json-util.h"

const char *kstatus_time(int64_t t, char buf[static 32]) {
        time_t tt = t > 0 ? (time_t) t : time(NULL);
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, 32, "1970-01-01T00:00:00Z");
        return buf;
}

int64_t kstatus_parse_time(const char *s) {
        struct tm tm = {};
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        if (!end)
                return -1;
        return (int64_t) timegm(&tm);
}

json_t *kstatus_condition(json_t *status, const char *type) {
        return json_array_find_str(json_object_get(status, "conditions"), "type", type);
}

int kstatus_remove_condition(json_t *status, const char *type) {
        json_t *conds = json_object_get(status, "conditions");
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) {
                if (streq_ptr(json_string_value(json_object_get(c, "type")), type)) {
                        json_array_remove(conds, i);
                        return 1;
                }
        }
        return 0;
}

static bool str_same(json_t *o, const char *key, const char *want) {
        return streq_ptr(json_string_value(json_object_get(o, key)), want);
}

int kstatus_set_condition(json_t *status, const KCondition *c) {
        json_t *conds = json_object_get(status, "conditions");
        if (!json_is_array(conds)) {
                conds = json_array();
                if (!conds || json_object_set_new(status, "conditions", conds) < 0)
                        return -ENOMEM;
        }
        size_t i, at = json_array_size(conds);
        json_t *old;
        json_array_foreach(conds, i, old)
                if (str_same(old, "type", c->type)) {
                        at = i;
                        break;
                }
        old = at < json_array_size(conds) ? json_array_get(conds, at) : NULL;
        if (old && str_same(old, "status", c->status) && str_same(old, "reason", c->reason) &&
            str_same(old, "message", c->message))
                return 0;
        char ts[32];
        const char *since = old && str_same(old, "status", c->status)
                                    ? json_string_value(json_object_get(old, "lastTransitionTime"))
                                    : NULL;
        json_t *n = json_pack("{s:s, s:s, s:n, s:s}", "type", c->type, "status", c->status, "lastProbeTime",
                              "lastTransitionTime", since ? since : kstatus_time(0, ts));
        if (!n || (c->reason && json_object_set_new(n, "reason", json_string(c->reason)) < 0) ||
            (c->message && json_object_set_new(n, "message", json_string(c->message)) < 0)) {
                json_decref(n);
                return -ENOMEM;
        }
        if ((old ? json_array_set_new(conds, at, n) : json_array_append_new(conds, n)) < 0)
                return -ENOMEM;
        return 1;
}
