/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher --run internals, shared between the files of launcher/runtime/:
 *   run.c            launch_run(): status file, phases, setup and teardown
 *   lv-events.c      kvnet's epoll loop as libvirt's event implementation
 *   libvirt.c        connection, domain start, lifecycle and close events
 *   shutdown.c       SIGTERM/SIGINT and {"op":"shutdown"}: ACPI power button, grace period
 *   status-socket.c  the unix socket: status, shutdown, migrate, migrate-cancel, attach-interface,
 *                    detach-interface
 *   hotplug.c        NIC hot-plug and unplug, the NIC list as the domain has it now
 *   migrate.c        live migration, source side (worker thread, statistics, netd notifications)
 *   incoming.c       live migration, target side (--incoming)
 *   status.c, files.c  the status JSON and the files the launcher makes (public: launcher.h)
 *
 * Lifecycle: Scheduled (connecting/starting) -> Running (virDomainCreateXML returned) ->
 * Succeeded (STOPPED/SHUTDOWN: the guest powered off) | Failed (destroyed, crashed, failed,
 * connection lost). SIGTERM/SIGINT or {"op":"shutdown"} on the socket: ACPI power button, then
 * virDomainDestroy after the grace period. The launcher exits only when the domain is gone or
 * the connection to libvirt is lost. */
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>

#include "common/event.h"
#include "common/migproto.h"
#include "launcher/launcher-priv.h"
#include "migration/migrate.h"

#define STATUS_MAX_CLIENTS 16
#define CLIENT_BUF 4096
#define LAUNCH_ACPI_REPEAT_SEC 5
/* detach-interface: how long the guest has to release the device (libvirt's DEVICE_REMOVED). */
#define LAUNCH_DETACH_TIMEOUT_SEC 30

/* ------------------------------------------------------------------ libvirt event implementation */

typedef struct LvWatch LvWatch;
typedef struct LvTimeout LvTimeout;

/* libvirt calls these from any thread (a migration runs in a worker thread; its RPC toggles the
 * socket's watch and the keepalive timer). The lists are protected by 'lock'; epoll sources are only
 * touched by the loop thread ('owner'): another thread marks the entry dirty and wakes the loop
 * through 'wake_fd'. Callbacks and free callbacks run without the lock held. */
typedef struct LvEvents {
        EventLoop *loop;
        LvWatch *watches;
        LvTimeout *timeouts;
        int next_id;
        EventSource *reaper;
        pthread_mutex_t lock;
        pthread_t owner;
        int wake_fd;
        EventSource *wake_src;
} LvEvents;

/* Registers le (wake_fd = -1 before) on loop as libvirt's event implementation, owned by the
 * calling thread. At most once per process. */
int lv_events_register(LvEvents *le, EventLoop *loop) _wur_;
/* After virConnectClose: releases what libvirt did not remove; libvirt's callbacks stay registered
 * but inert. Fine on an le that was never (or not fully) registered. */
void lv_events_unregister(LvEvents *le);

/* ------------------------------------------------------------------ the launcher */

typedef struct Client Client;
typedef struct MigJob MigJob;
typedef struct RtDetach RtDetach;

typedef struct Runtime {
        EventLoop *loop;
        const LaunchVmi *v;
        const LaunchRunOptions *o;
        LaunchStatus st;
        char *status_file;
        char *socket_path;
        virConnectPtr conn;
        virDomainPtr dom;
        int lifecycle_cb;
        bool close_cb;
        bool conn_lost;
        /* libvirtd went away under a running domain: reconnecting (libvirt.c) */
        EventSource *reconnect_timer;
        uint64_t lost_at_us;
        char shutdown_pending[64]; /* a shutdown asked for while reconnecting: done once back */
        bool done;
        bool we_destroyed;
        int exit_code;
        int64_t grace;
        EventSource *grace_timer;
        EventSource *press_timer;
        int listen_fd;
        EventSource *listen_src;
        Client *clients[STATUS_MAX_CLIENTS];
        /* live migration (source side): one at a time, run by a worker thread */
        MigJob *mig;
        bool mig_cancel;         /* migrate-cancel (or shutdown) asked libvirt to abort */
        bool migrated_away;      /* STOPPED/MIGRATED seen */
        bool mig_succeeded;      /* the worker reported success; waiting for STOPPED/MIGRATED */
        bool have_event_stats;   /* JOB_COMPLETED arrived */
        KvMigrateResult event_stats;
        EventSource *mig_stats_timer; /* success: short wait for JOB_COMPLETED */
        int job_cb;
        /* --incoming */
        EventSource *incoming_timer;
        /* what launch_prepare_files() made: removed when the VM is gone for good */
        LaunchFiles files;
        bool domain_created;     /* virDomainCreateXML succeeded, or an incoming domain arrived */
        /* The NICs as the domain has them now: the VMI's (boot), plus attach-interface, minus what
         * libvirt reported removed. Parallel arrays; st.nics points at nics; names owned by ifcs. */
        LaunchInterface *ifcs;
        LaunchNic *nics;
        RtDetach **detaches;     /* a pending detach-interface (timeout) per NIC, or NULL */
        size_t n_nics, cap_nics;
        bool nics_changed;       /* a NIC was hot-plugged or unplugged: libvirt's live XML is the layout */
        int removed_cb, removal_failed_cb;
} Runtime;

static inline int64_t realtime_ms(void) {
        return (int64_t) (realtime_usec() / 1000);
}

/* run.c: the status file follows every change. */
void rt_write_status(Runtime *rt);
void rt_set_phase(Runtime *rt, LaunchPhase phase, const char *fmt, ...) _printf_(3, 4);
/* The domain is gone (or the connection): final phase, leave the loop with exit_code. Once. */
void rt_finish(Runtime *rt, LaunchPhase phase, int exit_code, const char *reason);

/* libvirt.c: connects, checks no domain of that name exists, prepares the files, registers the
 * events, then starts the domain (or waits for it: --incoming). Returns a LAUNCH_EXIT_* code with
 * the reason in the status. */
int rt_start_domain(Runtime *rt, const char *xml);
void rt_disconnect(Runtime *rt);

/* shutdown.c */
void rt_request_shutdown(Runtime *rt, const char *why);
int rt_on_signal(EventSource *s, int signo, void *userdata);

/* status-socket.c */
int rt_listen(Runtime *rt, KvErr *e) _wur_;
void rt_unlisten(Runtime *rt);

/* migrate.c: the source side of a live migration. */
/* netd notifications: best effort, a short timeout, a warning when netd does not answer. */
void rt_netd(Runtime *rt, const char *op, json_t *args /* stolen */);
/* The same, returning netd's result (the caller's; NULL when netd is not configured or refused). */
json_t *rt_netd_call(Runtime *rt, const char *op, json_t *args /* stolen */);
void rt_netd_source(Runtime *rt, MigPhase phase, const char *reason);
void rt_mig_take_stats(Runtime *rt, const KvMigrateResult *r);
int rt_start_migration(Runtime *rt, json_t *args, KvErr *e);
int rt_cancel_migration(Runtime *rt, const char *why, KvErr *e);
void rt_on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
                         void *opaque);
/* Teardown: a migration still running when the loop ended is aborted and joined. */
void rt_migration_stop(Runtime *rt);

/* hotplug.c: NIC hot-plug and unplug. */
/* Copies the boot NICs (nics[i] of v->interfaces[i]) into the runtime's list. -ENOMEM. */
int rt_nics_init(Runtime *rt, const LaunchNic *nics, size_t n) _wur_;
void rt_nics_free(Runtime *rt);
/* true when an interface waits for the guest to release it (*ret_name names it). */
bool rt_nics_detaching(const Runtime *rt, const char **ret_name);
/* What the ops on the running domain (NIC hot-plug, pause) refuse: a domain that is not Running here, a shutdown,
 * a migration (code 11, try again, naming ctx). */
int rt_domain_op_check(Runtime *rt, const char *ctx, KvErr *e);
/* pause.c: {"op":"pause"} / {"op":"unpause"} (virtctl pause / unpause): suspends or resumes the running domain;
 * refused during a migration or a shutdown; the other one's no-op answer is an error naming the state. */
int rt_pause(Runtime *rt, bool pause, KvErr *e);
/* A lifecycle event that pauses or resumes the domain outside a migration (the op's own, or virsh's). */
void rt_pause_event(Runtime *rt, int event, int detail);
int rt_attach_interface(Runtime *rt, json_t *args, KvErr *e);
int rt_detach_interface(Runtime *rt, json_t *args, KvErr *e);
void rt_on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque);
void rt_on_device_removal_failed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque);

/* incoming.c: the target side (--incoming). */
/* Arms the timeout and enters WaitingForMigration; LAUNCH_EXIT_* as rt_start_domain(). */
int rt_incoming_wait(Runtime *rt);
/* A lifecycle event of our domain while it is arriving. */
void rt_incoming_event(Runtime *rt, virDomainPtr dom, int event, int detail);
void rt_incoming_failed(Runtime *rt, const char *reason);
