/* SPDX-License-Identifier: Apache-2.0 */
/* The launcher ⇄ netd migration messages (see migproto.h). */
#include "common/migproto.h"

#include <limits.h>

#include "common/json-util.h"

#define MIG_FIGURE_MAX 86400000LL /* downtimeMs, totalMs: one day */

static const char *const mig_phase_table[_MIG_PHASE_MAX] = {
        [MIG_PHASE_BEGIN] = "begin",
        [MIG_PHASE_SWITCHOVER] = "switchover",
        [MIG_PHASE_COMPLETED] = "completed",
        [MIG_PHASE_ABORTED] = "aborted",
};

const char *mig_phase_to_string(MigPhase p) {
        return p >= 0 && p < _MIG_PHASE_MAX ? mig_phase_table[p] : NULL;
}

MigPhase mig_phase_from_string(const char *s) {
        for (int p = 0; s && p < _MIG_PHASE_MAX; p++)
                if (streq(mig_phase_table[p], s))
                        return (MigPhase) p;
        return _MIG_PHASE_INVALID;
}

static void vm_ref_done(MigVmRef *v) {
        free(v->vm_namespace);
        free(v->vm_name);
        *v = (MigVmRef){};
}

void mig_source_msg_done(MigSourceMsg *m) {
        vm_ref_done(&m->vm);
        free(m->target);
        free(m->reason);
        m->target = m->reason = NULL;
}

void mig_activate_msg_done(MigActivateMsg *m) {
        vm_ref_done(&m->vm);
}

/* ---- to JSON ---- */

static json_t *vm_ref_to_json(const MigVmRef *v) {
        return json_pack("{s:s,s:s}", "vmNamespace", v->vm_namespace, "vmName", v->vm_name);
}

/* Adds key: value (stolen) to o; false (o untouched but value freed) on ENOMEM. */
static bool put(json_t *o, const char *key, json_t *value) {
        return value && json_object_set_new(o, key, value) == 0;
}

json_t *mig_source_msg_to_json(const MigSourceMsg *m) {
        const char *phase = mig_phase_to_string(m->phase);
        if (!phase)
                return NULL;
        _cleanup_json_ json_t *o = vm_ref_to_json(&m->vm);
        if (!o || !put(o, "phase", json_string(phase)))
                return NULL;
        if (m->target && !put(o, "target", json_string(m->target)))
                return NULL;
        if (m->downtime_ms >= 0 && !put(o, "downtimeMs", json_integer(m->downtime_ms)))
                return NULL;
        if (m->total_ms >= 0 && !put(o, "totalMs", json_integer(m->total_ms)))
                return NULL;
        if (m->reason && !put(o, "reason", json_string(m->reason)))
                return NULL;
        return TAKE_PTR(o);
}

json_t *mig_activate_msg_to_json(const MigActivateMsg *m) {
        return vm_ref_to_json(&m->vm);
}

json_t *mig_source_reply_to_json(const MigSourceReply *r) {
        if (r->has_redirected)
                return json_pack("{s:i,s:i}", "endpoints", (int) r->endpoints, "redirected", (int) r->redirected);
        return json_pack("{s:i}", "endpoints", (int) r->endpoints);
}

json_t *mig_activate_reply_to_json(const MigActivateReply *r) {
        return json_pack("{s:i,s:i,s:i,s:I,s:I,s:I}", "endpoints", (int) r->endpoints, "alreadyActive",
                         (int) r->already_active, "announcements", (int) r->announcements, "switchMicros",
                         (json_int_t) r->switch_us, "activateMicros", (json_int_t) r->activate_us, "earlyPackets",
                         (json_int_t) r->early_packets);
}

/* ---- from JSON ---- */

static int dup_string(const char *s, char **ret) {
        char *d = strdup(s);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static int vm_ref_from_json(json_t *args, const char *verb, MigVmRef *ret, KvErr *e) {
        const char *ns, *name;
        int r;
        if (!json_is_object(args))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'args' must be an object", verb);
        if ((r = json_get_string(args, verb, "vmNamespace", true, &ns, e)) < 0 ||
            (r = json_get_string(args, verb, "vmName", true, &name, e)) < 0)
                return r;
        if (!*ns || !*name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'vmNamespace' and 'vmName' must not be empty",
                                 verb);
        MigVmRef v = {};
        if (dup_string(ns, &v.vm_namespace) < 0 || dup_string(name, &v.vm_name) < 0) {
                vm_ref_done(&v);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "%s: out of memory", verb);
        }
        *ret = v;
        return 0;
}

int mig_source_msg_from_json(json_t *args, MigSourceMsg *ret, KvErr *e) {
        const char *verb = MIGPROTO_SOURCE, *phase = NULL, *target = NULL, *reason = NULL;
        _cleanup_(mig_source_msg_done) MigSourceMsg m = { .downtime_ms = -1, .total_ms = -1 };
        int r = vm_ref_from_json(args, verb, &m.vm, e);
        if (r < 0)
                return r;
        if ((r = json_get_string(args, verb, "phase", true, &phase, e)) < 0 ||
            (r = json_get_string(args, verb, "target", false, &target, e)) < 0 ||
            (r = json_get_string(args, verb, "reason", false, &reason, e)) < 0 ||
            (r = json_get_int(args, verb, "downtimeMs", false, -1, MIG_FIGURE_MAX, &m.downtime_ms, e)) < 0 ||
            (r = json_get_int(args, verb, "totalMs", false, -1, MIG_FIGURE_MAX, &m.total_ms, e)) < 0)
                return r;
        m.phase = mig_phase_from_string(phase);
        if (m.phase < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'phase' must be begin, switchover, completed or aborted, got '%.32s'", verb, phase);
        if ((target && dup_string(target, &m.target) < 0) || (reason && dup_string(reason, &m.reason) < 0))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "%s: out of memory", verb);
        *ret = m;
        m = (MigSourceMsg){};
        return 0;
}

int mig_activate_msg_from_json(json_t *args, MigActivateMsg *ret, KvErr *e) {
        return vm_ref_from_json(args, MIGPROTO_ACTIVATE, &ret->vm, e);
}

static int get_count(json_t *o, const char *ctx, const char *key, bool required, unsigned *ret, KvErr *e) {
        long long x = 0;
        int r = json_get_int(o, ctx, key, required, 0, INT_MAX, &x, e);
        if (r > 0)
                *ret = (unsigned) x;
        return r;
}

static int get_u64(json_t *o, const char *ctx, const char *key, uint64_t *ret, KvErr *e) {
        long long x = 0;
        int r = json_get_int(o, ctx, key, true, 0, LLONG_MAX, &x, e);
        if (r > 0)
                *ret = (uint64_t) x;
        return r;
}

int mig_source_reply_from_json(json_t *result, MigSourceReply *ret, KvErr *e) {
        const char *ctx = MIGPROTO_SOURCE " reply";
        MigSourceReply rp = {};
        int r;
        if (!json_is_object(result))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: must be an object", ctx);
        if ((r = get_count(result, ctx, "endpoints", true, &rp.endpoints, e)) < 0 ||
            (r = get_count(result, ctx, "redirected", false, &rp.redirected, e)) < 0)
                return r;
        rp.has_redirected = r > 0;
        *ret = rp;
        return 0;
}

int mig_activate_reply_from_json(json_t *result, MigActivateReply *ret, KvErr *e) {
        const char *ctx = MIGPROTO_ACTIVATE " reply";
        MigActivateReply rp = {};
        int r;
        if (!json_is_object(result))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: must be an object", ctx);
        if ((r = get_count(result, ctx, "endpoints", true, &rp.endpoints, e)) < 0 ||
            (r = get_count(result, ctx, "alreadyActive", true, &rp.already_active, e)) < 0 ||
            (r = get_count(result, ctx, "announcements", true, &rp.announcements, e)) < 0 ||
            (r = get_u64(result, ctx, "switchMicros", &rp.switch_us, e)) < 0 ||
            (r = get_u64(result, ctx, "activateMicros", &rp.activate_us, e)) < 0 ||
            (r = get_u64(result, ctx, "earlyPackets", &rp.early_packets, e)) < 0)
                return r;
        *ret = rp;
        return 0;
}
