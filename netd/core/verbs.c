/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the socket verbs, looked up in one table. */
#include <stdlib.h>

#include "common/log.h"
#include "common/proto.h"
#include "netd/core/netd-priv.h"

/* Sorted by name (strcmp order): verb_find() bisects it. */
static const Verb verbs[] = {
        { "add", do_add, true, false },
        { "check", do_check, false, false },
        { "cluster-claims", do_cluster_claims, false, true },
        { "del", do_del, true, false },
        { "endpoints", do_endpoints, false, true },
        { "gc", do_gc, true, false },
        { "ipam", do_ipam, false, true },
        { "ipam-release", do_ipam_release, false, false },
        { "kube", do_kube, false, false, true },
        { "migration-activate", do_migration_activate, false, false },
        { "migration-source", do_migration_source, false, false },
        { "migrations", do_migrations, false, true },
        { "nat", do_nat, false, true },
        { "ping", do_ping, false, true },
        { "sriov", do_sriov, false, true },
        { "status", do_ping, false, true },
        { "status-daemon", do_status_daemon, false, true },
        { "trace", do_trace, false, true },
};

static int verb_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const Verb *) elem)->name);
}

_Static_assert(ELEMENTSOF(verbs) <= NETD_MAX_VERBS, "NETD_MAX_VERBS: room for every verb's figures");

const Verb *verb_at(size_t i) {
        return i < ELEMENTSOF(verbs) ? &verbs[i] : NULL;
}

int verb_index(const Verb *v) {
        return (int) (v - verbs);
}

const Verb *verb_find(const char *name) {
        return bsearch(name, verbs, ELEMENTSOF(verbs), sizeof verbs[0], verb_cmp);
}

json_t *manager_handle(Manager *m, json_t *request) {
        KvErr e = {};
        json_t *result = NULL;
        int r;
        uint64_t t0 = now_usec();
        m->n_requests++;

        const char *op = json_string_value(json_object_get(request, "op"));
        json_t *args = json_object_get(request, "args");
        const Verb *verb = op ? verb_find(op) : NULL;
        if (!op)
                r = kverr_set(&e, KV_ERR_DECODE, -EINVAL, "request: 'op' must be a string");
        else if (!verb)
                r = kverr_set(&e, KV_ERR_DECODE, -EINVAL, "request: unknown op '%s'", op);
        else
                r = verb->handler(m, args, &result, &e);

        if (r < 0 && !kverr_is_set(&e))
                kverr_set_errno(&e, KV_ERR_INTERNAL, r, "netd: '%s' failed", op ? op : "?");
        netd_metrics_request(m, verb ? (int) (verb - verbs) : -1, r < 0 ? (unsigned) e.code : 0, now_usec() - t0);
        if (r < 0) {
                m->n_errors++;
                json_decref(result);
                if (verb && verb->log_failure)
                        log_warning("%s failed (code %d): %s%s%s", op, e.code, e.msg, e.details[0] ? ": " : "",
                                    e.details);
                return proto_reply_error(&e);
        }
        return proto_reply_ok(result);
}

