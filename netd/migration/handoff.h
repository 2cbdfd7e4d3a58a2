/* SPDX-License-Identifier: Apache-2.0 */
/* The migration handoff of one node (docs/migration.md, "The network side"): the Handoff owns what a live
 * migration needs beyond the attachments themselves — the source's redirect routes, the target's
 * early-switchover redirect (migredir), the first-frame watches, the routeHook, the history log — and
 * serves `migration-source`, `migration-activate` and `migrations` (common/migproto.h).
 *
 *   handoff.c  the object, its lifecycle, the history, the routeHook, the listing
 *   target.c   a passive target: prepare, the guest's first frame, activation, roll back
 *   source.c   the source's phases and its redirect routes to the target
 *   early.c    the target's half of the early switchover (arming migredir)
 *
 * It reaches the attachments through HandoffHost (the daemon owns them) and never sees the Manager. */
#pragma once

#include <jansson.h>

#include "common/addr.h"
#include "common/event.h"
#include "common/kverr.h"
#include "netd/ipam/ipam.h"
#include "netd/link/reaper.h"
#include "netd/state/claimstore.h"
#include "netd/state/endpoint.h"

typedef struct Handoff Handoff;

/* What the handoff asks of the daemon that owns the attachments (netd/core/manager.c). */
typedef struct HandoffHost {
        void *userdata;
        /* Calls fn for every attachment; fn neither adds nor removes attachments. */
        void (*foreach_endpoint)(void *userdata, void (*fn)(Endpoint *ep, void *ctx), void *ctx);
        /* Writes the attachment's record (its migration marks changed). */
        int (*persist)(void *userdata, const Endpoint *ep, KvErr *e);
        /* The attachment's bridge port must pass no frames while it is a passive target (masquerade). */
        bool (*is_masq_vm)(const Endpoint *ep);
} HandoffHost;

typedef struct HandoffConfig {
        EventLoop *loop;            /* NULL: no timers, no routeHook reaping (unit tests) */
        const char *state_dir;      /* the history: STATE_DIR/migrations.json */
        ClaimStore *cs;             /* NULL on a stand-alone node (borrowed) */
        Ipam *ipam;                 /* the local claims (borrowed) */
        const char *node_name;      /* "" when none is configured */
        KvAddr node_address;        /* family 0 = none */
        uint32_t redirect_grace_ms; /* 0 = no redirects */
        const char *route_hook;     /* NULL = none */
} HandoffConfig;

int handoff_new(const HandoffConfig *c, const HandoffHost *host, Handoff **ret) _wur_;
/* Deletes the redirect routes still pending and disarms the early switchover (netd exits). */
Handoff *handoff_free(Handoff *h);

/* Reads the history a previous run left (a missing file is no error). */
int handoff_load(Handoff *h) _wur_;
/* At start, after the attachments are loaded: removes redirect routes and the migredir filter a previous
 * run left, arms passive targets again, reaps routeHook processes. reaper (may be NULL) closes packet
 * sockets off the event loop. */
int handoff_start(Handoff *h, Reaper *reaper) _wur_;

/* do_add, when the claim store made this node the migration target of the VM's claim held by node
 * 'holder': the attachment is marked as a target being prepared. */
void handoff_mark_target(Endpoint *ep, const char *holder);
/* do_add, after the datapath exists: an attachment for a VM whose claim another node holds is made
 * passive (masquerade: its bridge port listens) and recorded as a migration target. */
int handoff_prepare_target(Handoff *h, Endpoint *ep, KvErr *e) _wur_;
/* The endpoint goes away (or netd stops): drops its runtime migration state (the first-frame watch,
 * the early redirect). */
void handoff_forget(Handoff *h, Endpoint *ep);
/* remove_endpoint, for the last attachment of a claim key on this node: a target removed before
 * activation rolls the migration back; the routeHook withdraws the VM's route only where the VM is (not
 * after it migrated away, not for a target that never activated). */
void handoff_on_remove(Handoff *h, Endpoint *ep);
/* Runs the routeHook (if configured) for every address of a VM attachment, without waiting:
 * `HOOK announce|withdraw ADDR/32|ADDR/128 NODE`. An announcement first cancels a redirect of them. */
void handoff_route(Handoff *h, const Endpoint *ep, bool announce);

/* The verbs (docs/protocol.md): args is the request's "args", *ret the result. */
int handoff_activate(Handoff *h, json_t *args, json_t **ret, KvErr *e) _wur_;
int handoff_source(Handoff *h, json_t *args, json_t **ret, KvErr *e) _wur_;
json_t *handoff_list(Handoff *h);

/* Since netd started (counters for its metrics page): migrations that ended on this node by role and final state
 * (source: completed or aborted; target: active or aborted), each target's datapath switch time, and the packets
 * the early switchover delivered into paused targets. */
#define HANDOFF_SWITCH_BUCKETS 8
extern const double handoff_switch_le[HANDOFF_SWITCH_BUCKETS]; /* seconds */
typedef struct HandoffStats {
        uint64_t ended[_MIG_ROLE_MAX][_MIG_STATE_MAX];
        uint64_t switch_b[HANDOFF_SWITCH_BUCKETS], switch_n;
        double switch_sum;
        uint64_t early_packets;
} HandoffStats;
const HandoffStats *handoff_stats(const Handoff *h);
