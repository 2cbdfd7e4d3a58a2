/* SPDX-License-Identifier: Apache-2.0 */
/* The migration handoff without a kernel: the launcher ⇄ netd messages (common/migproto.c: round trips,
 * the exact bytes the launcher sends, every bad-input error) and the Handoff's state machine
 * (netd/migration/) driven through its verbs on attachments a fake host owns. No claim store redirects,
 * no routeHook, no links: the attachments have no node-side interface and no tap, so nothing touches the
 * network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/json-util.h"
#include "common/migproto.h"
#include "netd/migration/handoff-priv.h"

/* ---- helpers ---- */

static json_t *parse(const char *text) {
        json_error_t je;
        json_t *o = json_loads(text, JSON_DECODE_ANY, &je);
        if (!o)
                fail_msg("bad test JSON '%s': %s", text, je.text);
        return o;
}

static void assert_json_text(json_t *o, const char *want) {
        assert_non_null(o);
        char *s = json_dumps(o, JSON_COMPACT);
        assert_non_null(s);
        if (!streq(s, want))
                fail_msg("got  %s\nwant %s", s, want);
        free(s);
}

static void assert_contains(const char *s, const char *needle) {
        if (!strstr(s, needle))
                fail_msg("'%s' does not contain '%s'", s, needle);
}

/* ---- the protocol ---- */

static void test_phase_table(void **state) {
        (void) state;
        for (int p = 0; p < _MIG_PHASE_MAX; p++)
                assert_int_equal(mig_phase_from_string(mig_phase_to_string((MigPhase) p)), p);
        assert_string_equal(mig_phase_to_string(MIG_PHASE_BEGIN), "begin");
        assert_string_equal(mig_phase_to_string(MIG_PHASE_SWITCHOVER), "switchover");
        assert_string_equal(mig_phase_to_string(MIG_PHASE_COMPLETED), "completed");
        assert_string_equal(mig_phase_to_string(MIG_PHASE_ABORTED), "aborted");
        assert_int_equal(mig_phase_from_string("sideways"), _MIG_PHASE_INVALID);
        assert_int_equal(mig_phase_from_string("Begin"), _MIG_PHASE_INVALID);
        assert_int_equal(mig_phase_from_string(""), _MIG_PHASE_INVALID);
        assert_int_equal(mig_phase_from_string(NULL), _MIG_PHASE_INVALID);
        assert_null(mig_phase_to_string(_MIG_PHASE_MAX));
        assert_null(mig_phase_to_string(_MIG_PHASE_INVALID));

        for (int r = 0; r < _MIG_ROLE_MAX; r++)
                assert_int_equal(mig_role_from_string(mig_role_to_string((MigRole) r)), r);
        for (int s = 0; s < _MIG_STATE_MAX; s++)
                assert_int_equal(mig_state_from_string(mig_state_to_string((MigState) s)), s);
        assert_string_equal(mig_state_to_string(MIG_STATE_SWITCHING), "switching");
        assert_int_equal(mig_state_from_string("paused"), _MIG_STATE_INVALID);
        assert_int_equal(mig_role_from_string("bystander"), _MIG_ROLE_INVALID);
}

/* What the launcher sent before the typed module, built the way it built it. */
static void test_launcher_bytes_unchanged(void **state) {
        (void) state;
        char ns[] = "default", name[] = "web", dest[] = "qemu+unix:///system?socket=/run/n1.sock", why[] = "boom";
        MigSourceMsg m = { .vm = { .vm_namespace = ns, .vm_name = name }, .phase = MIG_PHASE_COMPLETED,
                           .target = dest, .downtime_ms = 42, .total_ms = 950, .reason = why };
        json_t *old = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "vmNamespace", ns, "vmName", name, "phase",
                                "completed", "target", dest, "downtimeMs", (json_int_t) 42, "totalMs",
                                (json_int_t) 950, "reason", why);
        char *want = json_dumps(old, JSON_COMPACT);
        json_t *o = mig_source_msg_to_json(&m);
        assert_json_text(o, want);
        assert_json_text(o, "{\"vmNamespace\":\"default\",\"vmName\":\"web\",\"phase\":\"completed\",\"target\":"
                            "\"qemu+unix:///system?socket=/run/n1.sock\",\"downtimeMs\":42,\"totalMs\":950,"
                            "\"reason\":\"boom\"}");
        free(want);
        json_decref(old);
        json_decref(o);

        /* the launcher's begin: figures 0, reason "" */
        char empty[] = "";
        m = (MigSourceMsg){ .vm = { .vm_namespace = ns, .vm_name = name }, .phase = MIG_PHASE_BEGIN, .target = dest,
                            .reason = empty };
        o = mig_source_msg_to_json(&m);
        assert_json_text(o, "{\"vmNamespace\":\"default\",\"vmName\":\"web\",\"phase\":\"begin\",\"target\":"
                            "\"qemu+unix:///system?socket=/run/n1.sock\",\"downtimeMs\":0,\"totalMs\":0,"
                            "\"reason\":\"\"}");
        json_decref(o);

        MigActivateMsg a = { .vm = { .vm_namespace = ns, .vm_name = name } };
        o = mig_activate_msg_to_json(&a);
        assert_json_text(o, "{\"vmNamespace\":\"default\",\"vmName\":\"web\"}");
        json_decref(o);
}

static void test_source_round_trip(void **state) {
        (void) state;
        char ns[] = "prod", name[] = "db", dest[] = "node2", why[] = "target QEMU died";
        for (int p = 0; p < _MIG_PHASE_MAX; p++) {
                MigSourceMsg m = { .vm = { .vm_namespace = ns, .vm_name = name }, .phase = (MigPhase) p,
                                   .target = dest, .downtime_ms = p, .total_ms = 86400000, .reason = why };
                json_t *o = mig_source_msg_to_json(&m);
                assert_non_null(o);
                MigSourceMsg back = {};
                KvErr e = {};
                assert_int_equal(mig_source_msg_from_json(o, &back, &e), 0);
                assert_string_equal(back.vm.vm_namespace, "prod");
                assert_string_equal(back.vm.vm_name, "db");
                assert_int_equal(back.phase, p);
                assert_string_equal(back.target, "node2");
                assert_string_equal(back.reason, "target QEMU died");
                assert_int_equal(back.downtime_ms, p);
                assert_int_equal(back.total_ms, 86400000);
                mig_source_msg_done(&back);
                assert_null(back.vm.vm_name);
                json_decref(o);
        }
        /* the optional fields: absent on the wire when absent in the struct, and back */
        MigSourceMsg m = { .vm = { .vm_namespace = ns, .vm_name = name }, .phase = MIG_PHASE_ABORTED,
                           .downtime_ms = -1, .total_ms = -1 };
        json_t *o = mig_source_msg_to_json(&m);
        assert_json_text(o, "{\"vmNamespace\":\"prod\",\"vmName\":\"db\",\"phase\":\"aborted\"}");
        MigSourceMsg back = {};
        KvErr e = {};
        assert_int_equal(mig_source_msg_from_json(o, &back, &e), 0);
        assert_null(back.target);
        assert_null(back.reason);
        assert_int_equal(back.downtime_ms, -1);
        assert_int_equal(back.total_ms, -1);
        mig_source_msg_done(&back);
        json_decref(o);
        /* null counts as absent */
        o = parse("{\"vmNamespace\":\"a\",\"vmName\":\"b\",\"phase\":\"begin\",\"target\":null,\"downtimeMs\":null}");
        assert_int_equal(mig_source_msg_from_json(o, &back, &e), 0);
        assert_null(back.target);
        assert_int_equal(back.downtime_ms, -1);
        mig_source_msg_done(&back);
        json_decref(o);
        /* an invalid phase does not serialise */
        m.phase = _MIG_PHASE_INVALID;
        assert_null(mig_source_msg_to_json(&m));

        MigActivateMsg a = {};
        o = parse("{\"vmNamespace\":\"x\",\"vmName\":\"y\"}");
        assert_int_equal(mig_activate_msg_from_json(o, &a, &e), 0);
        assert_string_equal(a.vm.vm_namespace, "x");
        assert_string_equal(a.vm.vm_name, "y");
        mig_activate_msg_done(&a);
        json_decref(o);
}

static void test_replies(void **state) {
        (void) state;
        KvErr e = {};
        MigSourceReply sr = { .endpoints = 2 };
        json_t *o = mig_source_reply_to_json(&sr);
        assert_json_text(o, "{\"endpoints\":2}");
        MigSourceReply sb = { .redirected = 9 };
        assert_int_equal(mig_source_reply_from_json(o, &sb, &e), 0);
        assert_int_equal(sb.endpoints, 2);
        assert_false(sb.has_redirected);
        json_decref(o);
        sr = (MigSourceReply){ .endpoints = 2, .has_redirected = true, .redirected = 1 };
        o = mig_source_reply_to_json(&sr);
        assert_json_text(o, "{\"endpoints\":2,\"redirected\":1}");
        assert_int_equal(mig_source_reply_from_json(o, &sb, &e), 0);
        assert_true(sb.has_redirected);
        assert_int_equal(sb.redirected, 1);
        json_decref(o);

        MigActivateReply ar = { .endpoints = 1, .already_active = 2, .announcements = 4, .switch_us = 1500,
                                .activate_us = 9000, .early_packets = 17 };
        o = mig_activate_reply_to_json(&ar);
        assert_json_text(o, "{\"endpoints\":1,\"alreadyActive\":2,\"announcements\":4,\"switchMicros\":1500,"
                            "\"activateMicros\":9000,\"earlyPackets\":17}");
        MigActivateReply ab = {};
        assert_int_equal(mig_activate_reply_from_json(o, &ab, &e), 0);
        assert_int_equal(ab.endpoints, 1);
        assert_int_equal(ab.already_active, 2);
        assert_int_equal(ab.announcements, 4);
        assert_int_equal(ab.switch_us, 1500);
        assert_int_equal(ab.activate_us, 9000);
        assert_int_equal(ab.early_packets, 17);
        json_decref(o);

        /* bad replies */
        MigActivateReply untouched = { .endpoints = 77 };
        o = parse("[1]");
        e = (KvErr){};
        assert_int_equal(mig_activate_reply_from_json(o, &untouched, &e), -EINVAL);
        assert_string_equal(e.msg, "migration-activate reply: must be an object");
        e = (KvErr){};
        assert_int_equal(mig_source_reply_from_json(o, &sb, &e), -EINVAL);
        assert_string_equal(e.msg, "migration-source reply: must be an object");
        json_decref(o);
        o = parse("{\"endpoints\":1,\"alreadyActive\":0,\"announcements\":2,\"switchMicros\":-5,"
                  "\"activateMicros\":1,\"earlyPackets\":0}");
        e = (KvErr){};
        assert_int_equal(mig_activate_reply_from_json(o, &untouched, &e), -ERANGE);
        assert_contains(e.msg, "migration-activate reply: 'switchMicros' must be 0..");
        assert_contains(e.msg, "got -5");
        json_decref(o);
        o = parse("{\"redirected\":1}");
        e = (KvErr){};
        assert_int_equal(mig_source_reply_from_json(o, &sb, &e), -EINVAL);
        assert_string_equal(e.msg, "migration-source reply: 'endpoints' is required");
        json_decref(o);
        assert_int_equal(untouched.endpoints, 77);
}

typedef struct BadCase {
        const char *args; /* NULL: no args at all */
        int code, r;
        const char *msg;
} BadCase;

static void expect_bad(const BadCase *c, size_t i, int r, const KvErr *e) {
        if (r != c->r || e->code != c->code || !streq(e->msg, c->msg))
                fail_msg("case %zu (%s): got %d, code %d, '%s'", i, c->args ? c->args : "NULL", r, e->code, e->msg);
}

static void test_source_bad_input(void **state) {
        (void) state;
        static const BadCase cases[] = {
                { NULL, KV_ERR_DECODE, -EINVAL, "migration-source: 'args' must be an object" },
                { "[]", KV_ERR_DECODE, -EINVAL, "migration-source: 'args' must be an object" },
                { "{\"vmName\":\"db\",\"phase\":\"begin\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'vmNamespace' is required" },
                { "{\"vmNamespace\":7,\"vmName\":\"db\",\"phase\":\"begin\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'vmNamespace' must be a string, got integer" },
                { "{\"vmNamespace\":\"default\",\"phase\":\"begin\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'vmName' is required" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"\",\"phase\":\"begin\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'vmNamespace' and 'vmName' must not be empty" },
                { "{\"vmNamespace\":\"\",\"vmName\":\"db\",\"phase\":\"begin\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'vmNamespace' and 'vmName' must not be empty" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'phase' is required" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":true}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'phase' must be a string, got boolean" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"sideways\"}", KV_ERR_INVALID_CONFIG,
                  -EINVAL, "migration-source: 'phase' must be begin, switchover, completed or aborted, got 'sideways'" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"BEGIN\"}", KV_ERR_INVALID_CONFIG,
                  -EINVAL, "migration-source: 'phase' must be begin, switchover, completed or aborted, got 'BEGIN'" },
                /* the value is cut at 32 characters */
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"0123456789abcdef0123456789abcdefXYZ\"}",
                  KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-source: 'phase' must be begin, switchover, completed or aborted, got "
                  "'0123456789abcdef0123456789abcdef'" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"begin\",\"target\":[]}",
                  KV_ERR_INVALID_CONFIG, -EINVAL, "migration-source: 'target' must be a string, got array" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"aborted\",\"reason\":{}}",
                  KV_ERR_INVALID_CONFIG, -EINVAL, "migration-source: 'reason' must be a string, got object" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"begin\",\"downtimeMs\":\"x\"}",
                  KV_ERR_INVALID_CONFIG, -EINVAL, "migration-source: 'downtimeMs' must be an integer, got string" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"completed\",\"downtimeMs\":1.5}",
                  KV_ERR_INVALID_CONFIG, -EINVAL, "migration-source: 'downtimeMs' must be an integer, got number" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"completed\",\"downtimeMs\":86400001}",
                  KV_ERR_INVALID_CONFIG, -ERANGE, "migration-source: 'downtimeMs' must be -1..86400000, got 86400001" },
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"completed\",\"totalMs\":-2}",
                  KV_ERR_INVALID_CONFIG, -ERANGE, "migration-source: 'totalMs' must be -1..86400000, got -2" },
                /* checked in this order: the first bad field is named */
                { "{\"vmNamespace\":\"default\",\"vmName\":\"db\",\"phase\":\"sideways\",\"totalMs\":\"x\"}",
                  KV_ERR_INVALID_CONFIG, -EINVAL, "migration-source: 'totalMs' must be an integer, got string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *o = cases[i].args ? parse(cases[i].args) : NULL;
                MigSourceMsg m = { .phase = MIG_PHASE_COMPLETED, .downtime_ms = 5 };
                KvErr e = {};
                expect_bad(&cases[i], i, mig_source_msg_from_json(o, &m, &e), &e);
                /* untouched on failure */
                assert_int_equal(m.phase, MIG_PHASE_COMPLETED);
                assert_int_equal(m.downtime_ms, 5);
                assert_null(m.vm.vm_name);
                json_decref(o);
        }
}

static void test_activate_bad_input(void **state) {
        (void) state;
        static const BadCase cases[] = {
                { NULL, KV_ERR_DECODE, -EINVAL, "migration-activate: 'args' must be an object" },
                { "\"web\"", KV_ERR_DECODE, -EINVAL, "migration-activate: 'args' must be an object" },
                { "{\"vmName\":\"web\"}", KV_ERR_INVALID_CONFIG, -EINVAL, "migration-activate: 'vmNamespace' is required" },
                { "{\"vmNamespace\":\"default\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-activate: 'vmName' is required" },
                { "{\"vmNamespace\":\"default\",\"vmName\":null}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-activate: 'vmName' is required" },
                { "{\"vmNamespace\":\"default\",\"vmName\":1}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-activate: 'vmName' must be a string, got integer" },
                { "{\"vmNamespace\":\"\",\"vmName\":\"web\"}", KV_ERR_INVALID_CONFIG, -EINVAL,
                  "migration-activate: 'vmNamespace' and 'vmName' must not be empty" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *o = cases[i].args ? parse(cases[i].args) : NULL;
                MigActivateMsg m = {};
                KvErr e = {};
                expect_bad(&cases[i], i, mig_activate_msg_from_json(o, &m, &e), &e);
                assert_null(m.vm.vm_namespace);
                json_decref(o);
        }
}

/* ---- the state machine ---- */

#define MAX_EPS 4

typedef struct Fx {
        char dir[64];
        Ipam *ipam;
        ClaimStore *cs1, *cs2; /* NULL unless a test opens them */
        Endpoint *eps[MAX_EPS];
        size_t n_eps;
        unsigned persisted;
        int persist_error; /* < 0: persist fails */
        Handoff *h;
} Fx;

static void fx_foreach(void *userdata, void (*fn)(Endpoint *ep, void *ctx), void *ctx) {
        Fx *fx = userdata;
        for (size_t i = 0; i < fx->n_eps; i++)
                fn(fx->eps[i], ctx);
}

static int fx_persist(void *userdata, const Endpoint *ep, KvErr *e) {
        Fx *fx = userdata;
        (void) ep;
        if (fx->persist_error < 0)
                return kverr_set(e, KV_ERR_IO, fx->persist_error, "cannot write the record of '%s'", ep->id);
        fx->persisted++;
        return 0;
}

static bool fx_is_masq_vm(const Endpoint *ep) {
        (void) ep;
        return false;
}

static Handoff *fx_handoff_hook(Fx *fx, ClaimStore *cs, const char *route_hook) {
        HandoffConfig c = { .state_dir = fx->dir, .cs = cs, .ipam = fx->ipam, .node_name = "node2",
                            .redirect_grace_ms = 0, .route_hook = route_hook };
        HandoffHost host = { .userdata = fx, .foreach_endpoint = fx_foreach, .persist = fx_persist,
                             .is_masq_vm = fx_is_masq_vm };
        Handoff *h = NULL;
        assert_int_equal(handoff_new(&c, &host, &h), 0);
        return h;
}

static Handoff *fx_handoff(Fx *fx, ClaimStore *cs) {
        return fx_handoff_hook(fx, cs, NULL);
}

static Endpoint *fx_add(Fx *fx, EndpointKind kind, const char *name, const char *cid) {
        assert_true(fx->n_eps < MAX_EPS);
        Endpoint *ep = calloc(1, sizeof *ep);
        assert_non_null(ep);
        ep->kind = kind;
        snprintf(ep->network, sizeof ep->network, "net");
        snprintf(ep->vm_namespace, sizeof ep->vm_namespace, "default");
        snprintf(ep->vm_name, sizeof ep->vm_name, "%s", name);
        snprintf(ep->vm_interface, sizeof ep->vm_interface, "default");
        snprintf(ep->id, sizeof ep->id, "net/%s/eth0", cid);
        snprintf(ep->key, sizeof ep->key, "vm/default/%s/default", name);
        snprintf(ep->binding, sizeof ep->binding, "bridge");
        snprintf(ep->netns, sizeof ep->netns, "/nonexistent/kvnet-test-handoff");
        assert_int_equal(kv_prefix_parse("10.88.0.5/24", &ep->addrs[0]), 0);
        ep->n_addrs = 1;
        fx->eps[fx->n_eps++] = ep;
        return ep;
}

static int setup(void **state) {
        Fx *fx = calloc(1, sizeof *fx);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-handoff-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        assert_int_equal(ipam_new(fx->dir, false, &fx->ipam), 0);
        fx->h = fx_handoff(fx, NULL);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fx *fx = *state;
        for (size_t i = 0; i < fx->n_eps; i++)
                handoff_forget(fx->h, fx->eps[i]);
        handoff_free(fx->h);
        for (size_t i = 0; i < fx->n_eps; i++)
                free(fx->eps[i]);
        claimstore_free(fx->cs1);
        claimstore_free(fx->cs2);
        ipam_free(fx->ipam);
        tmpdir_remove(fx->dir);
        free(fx);
        return 0;
}

/* Sends migration-source; returns the result code and, with ret, the reply. */
static int source(Fx *fx, const char *name, const char *phase, const char *extra, KvErr *e, json_t **ret) {
        char text[512];
        snprintf(text, sizeof text, "{\"vmNamespace\":\"default\",\"vmName\":\"%s\",\"phase\":\"%s\"%s}", name, phase,
                 extra ? extra : "");
        json_t *args = parse(text);
        json_t *res = NULL;
        *e = (KvErr){};
        int r = handoff_source(fx->h, args, &res, e);
        json_decref(args);
        if (ret)
                *ret = res;
        else
                json_decref(res);
        return r;
}

static int activate(Fx *fx, const char *name, KvErr *e, MigActivateReply *ret) {
        char text[256];
        snprintf(text, sizeof text, "{\"vmNamespace\":\"default\",\"vmName\":\"%s\"}", name);
        json_t *args = parse(text);
        json_t *res = NULL;
        *e = (KvErr){};
        int r = handoff_activate(fx->h, args, &res, e);
        json_decref(args);
        if (r >= 0) {
                KvErr pe = {};
                assert_int_equal(mig_activate_reply_from_json(res, ret, &pe), 0);
        }
        json_decref(res);
        return r;
}

/* The newest history entry (the `migrations` verb's first). */
static json_t *newest(Fx *fx) {
        json_t *l = handoff_list(fx->h);
        assert_non_null(l);
        json_t *ev = json_array_get(json_object_get(l, "history"), 0);
        assert_non_null(ev);
        json_incref(ev);
        json_decref(l);
        return ev;
}

static const char *str(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        assert_non_null(s);
        return s;
}

static long long num(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return v ? (long long) json_integer_value(v) : -1;
}

static void test_source_begin_switchover_completed(void **state) {
        Fx *fx = *state;
        Endpoint *ep = fx_add(fx, EP_KIND_VM, "web", "c1");
        Endpoint *other = fx_add(fx, EP_KIND_VM, "db", "c2");
        Endpoint *ctr = fx_add(fx, EP_KIND_CONTAINER, "web", "c3"); /* not a VM attachment: never touched */
        KvErr e;
        json_t *res;
        assert_int_equal(source(fx, "web", "begin", ",\"target\":\"node3\"", &e, &res), 0);
        assert_json_text(res, "{\"endpoints\":1}");
        json_decref(res);
        assert_int_equal(ep->mig_role, MIG_ROLE_SOURCE);
        assert_int_equal(ep->mig_state, MIG_STATE_MIGRATING);
        assert_string_equal(ep->mig_peer, "node3");
        assert_true(ep->mig_started_usec > 0);
        assert_int_equal(other->mig_role, MIG_ROLE_NONE);
        assert_int_equal(ctr->mig_role, MIG_ROLE_NONE);
        assert_int_equal(fx->persisted, 1);

        assert_int_equal(source(fx, "web", "switchover", NULL, &e, &res), 0);
        assert_json_text(res, "{\"endpoints\":1,\"redirected\":0}"); /* no claim store: nothing to redirect */
        json_decref(res);
        assert_int_equal(ep->mig_state, MIG_STATE_SWITCHING);
        json_t *ev = newest(fx);
        assert_string_equal(str(ev, "state"), "switching");
        assert_true(num(ev, "switchover") > 0);
        assert_int_equal(num(ev, "finished"), -1);
        json_decref(ev);

        assert_int_equal(source(fx, "web", "completed", ",\"downtimeMs\":40,\"totalMs\":900,\"reason\":\"\"", &e, &res),
                         0);
        assert_json_text(res, "{\"endpoints\":1}");
        json_decref(res);
        assert_int_equal(ep->mig_role, MIG_ROLE_SOURCE);
        assert_int_equal(ep->mig_state, MIG_STATE_COMPLETED);
        assert_int_equal(fx->persisted, 3);

        ev = newest(fx);
        assert_string_equal(str(ev, "vm"), "default/web");
        assert_string_equal(str(ev, "role"), "source");
        assert_string_equal(str(ev, "state"), "completed");
        assert_string_equal(str(ev, "peer"), "node3");
        assert_int_equal(num(ev, "downtimeMs"), 40);
        assert_int_equal(num(ev, "totalMs"), 900);
        assert_int_equal(num(ev, "endpoints"), 1);
        assert_true(num(ev, "finished") > 0);
        assert_int_equal(num(ev, "switched"), num(ev, "finished"));
        json_decref(ev);

        /* the listing shows the attachment with its marks */
        json_t *l = handoff_list(fx->h);
        json_t *cur = json_object_get(l, "endpoints");
        assert_int_equal(json_array_size(cur), 1);
        json_t *c = json_array_get(cur, 0);
        assert_string_equal(str(c, "attachment"), "net/c1/eth0");
        assert_string_equal(str(c, "role"), "source");
        assert_string_equal(str(c, "state"), "completed");
        assert_null(json_object_get(c, "earlyRedirect")); /* a target's only */
        assert_string_equal(str(l, "node"), "node2");
        json_decref(l);

        /* a second completed (a retry) finds the source attachment again */
        assert_int_equal(source(fx, "web", "completed", NULL, &e, NULL), 0);
        assert_int_equal(ep->mig_state, MIG_STATE_COMPLETED);
        /* the metrics count the migration once */
        assert_int_equal(handoff_stats(fx->h)->ended[MIG_ROLE_SOURCE][MIG_STATE_COMPLETED], 1);
        assert_int_equal(handoff_stats(fx->h)->ended[MIG_ROLE_SOURCE][MIG_STATE_ABORTED], 0);
}

static void test_source_aborted(void **state) {
        Fx *fx = *state;
        Endpoint *ep = fx_add(fx, EP_KIND_VM, "web", "c1");
        KvErr e;
        /* begin → aborted */
        assert_int_equal(source(fx, "web", "begin", ",\"target\":\"node3\"", &e, NULL), 0);
        assert_int_equal(source(fx, "web", "aborted", ",\"reason\":\"target QEMU died\"", &e, NULL), 0);
        assert_int_equal(ep->mig_role, MIG_ROLE_NONE);
        assert_int_equal(ep->mig_state, MIG_STATE_NONE);
        assert_string_equal(ep->mig_peer, "");
        assert_int_equal(ep->mig_started_usec, 0);
        json_t *ev = newest(fx);
        assert_string_equal(str(ev, "state"), "aborted");
        assert_string_equal(str(ev, "reason"), "target QEMU died");
        assert_true(num(ev, "finished") > 0);
        assert_int_equal(num(ev, "switched"), -1);
        json_decref(ev);
        /* aborted twice: nothing is migrating any more */
        assert_int_equal(source(fx, "web", "aborted", NULL, &e, NULL), -ENOENT);
        assert_int_equal(e.code, KV_ERR_UNKNOWN_CONTAINER);
        assert_string_equal(e.msg, "migration-source: no migrating attachment of VM default/web on this node");

        /* begin → switchover → aborted: a second migration, a new history entry */
        assert_int_equal(source(fx, "web", "begin", NULL, &e, NULL), 0);
        assert_string_equal(ep->mig_peer, "");
        assert_int_equal(source(fx, "web", "switchover", NULL, &e, NULL), 0);
        assert_int_equal(source(fx, "web", "aborted", NULL, &e, NULL), 0);
        assert_int_equal(ep->mig_role, MIG_ROLE_NONE);
        json_t *l = handoff_list(fx->h);
        json_t *hist = json_object_get(l, "history");
        assert_int_equal(json_array_size(hist), 2);
        assert_string_equal(str(json_array_get(hist, 0), "state"), "aborted");
        assert_true(num(json_array_get(hist, 0), "switchover") > 0);
        assert_string_equal(str(json_array_get(hist, 1), "reason"), "target QEMU died");
        assert_int_equal(json_array_size(json_object_get(l, "endpoints")), 0);
        json_decref(l);
}

static void test_source_invalid(void **state) {
        Fx *fx = *state;
        Endpoint *ep = fx_add(fx, EP_KIND_VM, "web", "c1");
        KvErr e;
        /* phases other than begin need a migrating attachment */
        static const char *const need_begin[] = { "switchover", "completed", "aborted" };
        for (size_t i = 0; i < ELEMENTSOF(need_begin); i++) {
                assert_int_equal(source(fx, "web", need_begin[i], NULL, &e, NULL), -ENOENT);
                assert_string_equal(e.msg, "migration-source: no migrating attachment of VM default/web on this node");
        }
        /* a VM without attachments here */
        assert_int_equal(source(fx, "web2", "begin", NULL, &e, NULL), -ENOENT);
        assert_int_equal(e.code, KV_ERR_UNKNOWN_CONTAINER);
        assert_string_equal(e.msg, "migration-source: no attachment of VM default/web2 on this node");
        /* an unknown phase changes nothing */
        assert_int_equal(source(fx, "web", "sideways", NULL, &e, NULL), -EINVAL);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_contains(e.msg, "got 'sideways'");
        assert_int_equal(ep->mig_role, MIG_ROLE_NONE);
        assert_int_equal(fx->persisted, 0);
        json_t *l = handoff_list(fx->h);
        assert_int_equal(json_array_size(json_object_get(l, "history")), 0);
        json_decref(l);

        /* begin twice: the second starts a new migration (new history entry, peer replaced) */
        assert_int_equal(source(fx, "web", "begin", ",\"target\":\"a\"", &e, NULL), 0);
        assert_int_equal(source(fx, "web", "begin", ",\"target\":\"b\"", &e, NULL), 0);
        assert_string_equal(ep->mig_peer, "b");
        l = handoff_list(fx->h);
        assert_int_equal(json_array_size(json_object_get(l, "history")), 2);
        json_decref(l);
        /* a failing record write is logged, the phase still applies */
        fx->persist_error = -EIO;
        assert_int_equal(source(fx, "web", "switchover", NULL, &e, NULL), 0);
        assert_int_equal(ep->mig_state, MIG_STATE_SWITCHING);
}

static void test_activate_target(void **state) {
        Fx *fx = *state;
        Endpoint *ep = fx_add(fx, EP_KIND_VM, "web", "c1");
        KvErr e;
        MigActivateReply rp;
        /* no target for the VM here: not prepared, or unknown */
        assert_int_equal(activate(fx, "web", &e, &rp), -ENOENT);
        assert_int_equal(e.code, KV_ERR_UNKNOWN_CONTAINER);
        assert_string_equal(e.msg, "migration-activate: no migration target for VM default/web on this node (was its "
                                   "target pod attached here?)");
        assert_int_equal(activate(fx, "nosuchvm", &e, &rp), -ENOENT);
        assert_contains(e.msg, "default/nosuchvm");
        /* a source attachment is no target either */
        assert_int_equal(source(fx, "web", "begin", NULL, &e, NULL), 0);
        assert_int_equal(activate(fx, "web", &e, &rp), -ENOENT);
        assert_int_equal(source(fx, "web", "aborted", NULL, &e, NULL), 0);

        /* the claim store: node1 holds the VM, node2 (this handoff) is its target */
        assert_int_equal(claimstore_open(fx->dir, "node1", false, &fx->cs1, &e), 0);
        assert_int_equal(claimstore_open(fx->dir, "node2", false, &fx->cs2, &e), 0);
        uint8_t mac[6] = { 2, 0, 0, 0, 0, 5 };
        assert_int_equal(claimstore_take(fx->cs1, "net", ep->key, ep->addrs, 1, mac, &e), 0);
        assert_int_equal(claimstore_begin_migration(fx->cs2, "net", ep->key, &e), 0);
        handoff_free(fx->h);
        fx->h = fx_handoff(fx, fx->cs2);

        /* do_add's marks, then prepare */
        ep->mig_role = MIG_ROLE_TARGET;
        ep->mig_state = MIG_STATE_PREPARED;
        snprintf(ep->mig_peer, sizeof ep->mig_peer, "node1");
        assert_int_equal(handoff_prepare_target(fx->h, ep, &e), 0);
        json_t *ev = newest(fx);
        assert_string_equal(str(ev, "role"), "target");
        assert_string_equal(str(ev, "state"), "prepared");
        assert_string_equal(str(ev, "peer"), "node1");
        json_decref(ev);
        json_t *l = handoff_list(fx->h);
        json_t *c = json_array_get(json_object_get(l, "endpoints"), 0);
        assert_false(json_is_true(json_object_get(c, "earlyRedirect"))); /* not armed: no nodeAddress */
        json_decref(l);

        unsigned before = fx->persisted;
        assert_int_equal(activate(fx, "web", &e, &rp), 0);
        assert_int_equal(rp.endpoints, 1);
        assert_int_equal(rp.already_active, 0);
        assert_int_equal(rp.announcements, 0); /* the sandbox is gone */
        assert_int_equal(rp.early_packets, 0);
        assert_int_equal(ep->mig_state, MIG_STATE_ACTIVE);
        assert_int_equal(fx->persisted, before + 1);
        CsRecord rec;
        assert_int_equal(claimstore_get(fx->cs1, "net", ep->key, &rec), 1);
        assert_string_equal(rec.holder, "node2");
        assert_string_equal(rec.target, "");
        ev = newest(fx);
        assert_string_equal(str(ev, "state"), "active");
        assert_true(num(ev, "switchMicros") >= 0);
        assert_int_equal(num(ev, "earlyPackets"), -1); /* never armed */
        long long switched = num(ev, "switchMicros");
        json_decref(ev);

        /* duplicate: the launcher's call after the guest's first frame */
        assert_int_equal(activate(fx, "web", &e, &rp), 0);
        assert_int_equal(rp.endpoints, 0);
        assert_int_equal(rp.already_active, 1);
        /* ... answered with the figures of the activation that happened (the launcher reports them) */
        assert_int_equal(rp.switch_us, switched);
        assert_int_equal(rp.early_packets, 0);
        /* an active target is not rolled back when it goes away */
        handoff_on_remove(fx->h, ep);
        ev = newest(fx);
        assert_string_equal(str(ev, "state"), "active");
        json_decref(ev);
        /* the metrics: one activation, its switch time observed once, nothing aborted */
        const HandoffStats *st = handoff_stats(fx->h);
        assert_int_equal(st->ended[MIG_ROLE_TARGET][MIG_STATE_ACTIVE], 1);
        assert_int_equal(st->switch_n, 1);
        assert_int_equal(st->switch_b[HANDOFF_SWITCH_BUCKETS - 1] <= 1, 1);
        assert_int_equal(st->ended[MIG_ROLE_TARGET][MIG_STATE_ABORTED], 0);
}

static void test_target_rolled_back(void **state) {
        Fx *fx = *state;
        Endpoint *ep = fx_add(fx, EP_KIND_VM, "web", "c1");
        KvErr e = {};
        ep->mig_role = MIG_ROLE_TARGET;
        ep->mig_state = MIG_STATE_PREPARED;
        snprintf(ep->mig_peer, sizeof ep->mig_peer, "node1");
        assert_int_equal(handoff_prepare_target(fx->h, ep, &e), 0);
        handoff_on_remove(fx->h, ep);
        json_t *ev = newest(fx);
        assert_string_equal(str(ev, "state"), "aborted");
        assert_string_equal(str(ev, "reason"), "target attachment removed before the VM arrived");
        assert_true(num(ev, "finished") > 0);
        json_decref(ev);
        assert_int_equal(handoff_stats(fx->h)->ended[MIG_ROLE_TARGET][MIG_STATE_ABORTED], 1);
        /* a second prepare of the same VM starts a new entry (the old one is finished) */
        assert_int_equal(handoff_prepare_target(fx->h, ep, &e), 0);
        json_t *l = handoff_list(fx->h);
        assert_int_equal(json_array_size(json_object_get(l, "history")), 2);
        json_decref(l);
}

static void test_history_persists(void **state) {
        Fx *fx = *state;
        fx_add(fx, EP_KIND_VM, "web", "c1");
        KvErr e;
        assert_int_equal(source(fx, "web", "begin", ",\"target\":\"node3\"", &e, NULL), 0);
        assert_int_equal(source(fx, "web", "completed", ",\"downtimeMs\":7,\"totalMs\":70", &e, NULL), 0);
        json_t *before = handoff_list(fx->h);
        char path[128];
        snprintf(path, sizeof path, "%s/migrations.json", fx->dir);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);

        /* a new run reads it back: the same history */
        Handoff *h2 = fx_handoff(fx, NULL);
        assert_int_equal(handoff_load(h2), 0);
        Handoff *h1 = fx->h;
        fx->h = h2;
        json_t *after = handoff_list(fx->h);
        fx->h = h1;
        assert_true(json_equal(json_object_get(before, "history"), json_object_get(after, "history")));
        handoff_free(h2);
        json_decref(before);
        json_decref(after);

        /* not a log: a new one starts */
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("{\"version\":1}", f);
        fclose(f);
        h2 = fx_handoff(fx, NULL);
        assert_int_equal(handoff_load(h2), 0);
        assert_int_equal(h2->log_n, 0);
        handoff_free(h2);
}

/* Waits (up to 5 s) until the routeHook's log has n lines; returns its text. */
static char *hook_log(const char *path, size_t n) {
        static char buf[1024];
        for (int i = 0; i < 500; i++) {
                buf[0] = '\0';
                FILE *f = fopen(path, "r");
                size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
                if (f)
                        fclose(f);
                buf[len] = '\0';
                size_t lines = 0;
                for (size_t k = 0; k < len; k++)
                        lines += buf[k] == '\n';
                if (lines >= n)
                        break;
                usleep(10 * 1000);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        return buf;
}

static void test_route_hook(void **state) {
        Fx *fx = *state;
        char hook[128], log[128];
        snprintf(hook, sizeof hook, "%s/hook.sh", fx->dir);
        snprintf(log, sizeof log, "%s/hook.log", fx->dir);
        FILE *f = fopen(hook, "w");
        assert_non_null(f);
        fprintf(f, "#!/bin/sh\necho \"$@\" >> '%s'\n", log);
        fclose(f);
        assert_int_equal(chmod(hook, 0755), 0);
        handoff_free(fx->h);
        fx->h = fx_handoff_hook(fx, NULL, hook);
        KvErr e = {};
        MigActivateReply rp;

        /* a target: announced at activation, withdrawn when it goes away active */
        Endpoint *t = fx_add(fx, EP_KIND_VM, "web", "c1");
        handoff_mark_target(t, "node1");
        assert_int_equal(t->mig_role, MIG_ROLE_TARGET);
        assert_int_equal(t->mig_state, MIG_STATE_PREPARED);
        assert_string_equal(t->mig_peer, "node1");
        assert_int_equal(handoff_prepare_target(fx->h, t, &e), 0);
        assert_int_equal(activate(fx, "web", &e, &rp), 0);
        assert_string_equal(hook_log(log, 1), "announce 10.88.0.5/32 node2\n");
        handoff_on_remove(fx->h, t);
        assert_string_equal(hook_log(log, 2), "announce 10.88.0.5/32 node2\nwithdraw 10.88.0.5/32 node2\n");

        /* a source that completed, and a target that never activated: the VM is not here, no withdraw */
        Endpoint *s = fx_add(fx, EP_KIND_VM, "db", "c2");
        assert_int_equal(source(fx, "db", "begin", NULL, &e, NULL), 0);
        assert_int_equal(source(fx, "db", "completed", NULL, &e, NULL), 0);
        handoff_on_remove(fx->h, s);
        Endpoint *p = fx_add(fx, EP_KIND_VM, "app", "c3");
        handoff_mark_target(p, "node1");
        assert_int_equal(handoff_prepare_target(fx->h, p, &e), 0);
        handoff_on_remove(fx->h, p);
        /* a plain VM attachment (no migration) is withdrawn */
        Endpoint *v = fx_add(fx, EP_KIND_VM, "plain", "c4");
        assert_int_equal(kv_prefix_parse("fd00::7/64", &v->addrs[0]), 0);
        handoff_on_remove(fx->h, v);
        assert_string_equal(hook_log(log, 3), "announce 10.88.0.5/32 node2\nwithdraw 10.88.0.5/32 node2\n"
                                              "withdraw fd00::7/128 node2\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_phase_table),
                cmocka_unit_test(test_launcher_bytes_unchanged),
                cmocka_unit_test(test_source_round_trip),
                cmocka_unit_test(test_replies),
                cmocka_unit_test(test_source_bad_input),
                cmocka_unit_test(test_activate_bad_input),
                cmocka_unit_test_setup_teardown(test_source_begin_switchover_completed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_aborted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_activate_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_target_rolled_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_history_persists, setup, teardown),
                cmocka_unit_test_setup_teardown(test_route_hook, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
