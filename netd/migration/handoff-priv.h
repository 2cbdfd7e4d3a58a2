/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the migration handoff shared by its files (handoff.c, target.c, source.c, early.c) and
 * tests/unit/test-handoff.c. */
#pragma once

#include "netd/migration/handoff.h"
#include "netd/migration/migredir.h"
#include "netd/migration/migstate.h"

#define HANDOFF_MAX_REDIRECTS 64
#define HANDOFF_RTPROT_REDIRECT 118 /* routing protocol number of the source's redirect routes */
#define HANDOFF_LOG_MAX 64          /* history entries kept */

/* One migration as this node saw it (`kvnetctl migrations`). */
typedef struct MigEvent {
        char vm[160]; /* namespace/name */
        MigRole role;
        MigState state;
        char peer[256];
        char reason[256];
        uint64_t started_usec, switched_usec, finished_usec;
        long long downtime_ms, total_ms, activate_us; /* -1 = unknown; activate_us: target datapath switch time */
        uint64_t switchover_usec;   /* source: the VM paused and its packets went to the target (0 = not) */
        long long early_packets;    /* target: packets forwarded into the paused datapath (-1 = not armed) */
        unsigned n_endpoints;
} MigEvent;

/* The source's host route VM/32 via the target node, for redirectGraceMs. */
typedef struct Redirect {
        KvPrefix dst;
        KvAddr via;
        EventSource *timer;
        Handoff *h; /* NULL: the slot is free */
} Redirect;

struct Handoff {
        HandoffHost host;
        EventLoop *loop;
        Reaper *reaper; /* from handoff_start on; NULL before */
        ClaimStore *cs;
        Ipam *ipam;
        char *state_dir;
        char node_name[CS_NODE_MAX];
        KvAddr node_address;
        uint32_t redirect_grace_ms;
        char *route_hook;
        EventSource *sigchld;
        Redirect redirects[HANDOFF_MAX_REDIRECTS];
        MigRedir *migredir; /* target side of the early switchover: NULL while nothing is armed */
        MigEvent log[HANDOFF_LOG_MAX]; /* ring, newest at log_next - 1 */
        size_t log_n, log_next;
        HandoffStats stats;
};

/* The attachments of VM ns/name (ns NULL: of every VM), in the host's order. */
typedef struct HandoffEps {
        Endpoint **v;
        size_t n;
} HandoffEps;
int handoff_vm_endpoints(Handoff *h, const char *ns, const char *name, HandoffEps *ret) _wur_;
void handoff_eps_done(HandoffEps *eps);
void handoff_vm_id(const Endpoint *ep, char *buf, size_t n);
/* The attachment's migration marks changed: its record is written (failures are logged). */
void handoff_persist(Handoff *h, const Endpoint *ep);

/* handoff.c: the history */
MigEvent *handoff_log_current(Handoff *h, const char *vm, MigRole role);
/* The newest event of vm in that role, ended or not (NULL: none). */
MigEvent *handoff_log_latest(Handoff *h, const char *vm, MigRole role);
MigEvent *handoff_log_new(Handoff *h, const char *vm, MigRole role, const char *peer);
/* The entry in progress for vm and role, or a new one. */
MigEvent *handoff_log_get(Handoff *h, const char *vm, MigRole role, const char *peer);
void handoff_log_save(Handoff *h);
/* The history entry ev reached its end (its role's final state): counted in the stats. */
void handoff_log_ended(Handoff *h, const MigEvent *ev);

/* source.c: redirects */
void handoff_redirect_cancel_for(Handoff *h, const Endpoint *ep);
void handoff_redirect_flush_stale(void);
void handoff_redirect_stop_all(Handoff *h);

/* target.c */
void handoff_watch_stop(Handoff *h, Endpoint *ep);
/* A passive target goes away before the VM arrived: this node withdraws as the migration target. */
void handoff_target_roll_back(Handoff *h, Endpoint *ep);

/* early.c: the early switchover, target side */
void handoff_early_arm(Handoff *h, Endpoint *ep);
/* Disarms the attachment's entries: the packets they forwarded (*ret_armed: whether any was armed). */
uint64_t handoff_early_disarm(Handoff *h, Endpoint *ep, bool *ret_armed);
