/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher --run: one libvirt domain per process, driven from kvnet's epoll loop.
 *
 * libvirt's client library needs an event loop for domain events and keepalives. We register our
 * own (virEventRegisterImpl) on top of common/event.c, so everything stays in one thread:
 * handles -> io sources (an fd whose events libvirt sets to 0 is taken out of epoll, since epoll
 * would still report HUP/ERR), timeouts -> timerfd sources (frequency 0 = "every iteration", a
 * 1 us periodic timer). libvirt's free callbacks must not run inside remove*(): they are deferred
 * to a one-shot timer, as libvirt's default implementation does.
 *
 * Lifecycle: Scheduled (connecting/starting) -> Running (virDomainCreateXML returned) ->
 * Succeeded (STOPPED/SHUTDOWN: the guest powered off) | Failed (destroyed, crashed, failed,
 * connection lost). SIGTERM/SIGINT or {"op":"shutdown"} on the socket: ACPI power button, then
 * virDomainDestroy after the grace period. The launcher exits only when the domain is gone or
 * the connection to libvirt is lost. */
#include <inttypes.h>
#include <libvirt/libvirt.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/migproto.h"
#include "common/proto.h"
#include "launcher/launcher.h"
#include "migration/migrate.h"

#define STATUS_MAX_CLIENTS 16
#define CLIENT_BUF 4096
#define LAUNCH_ACPI_REPEAT_SEC 5

/* ------------------------------------------------------------------ libvirt event implementation */

typedef struct LvWatch {
        int id;
        int fd;
        int events; /* VIR_EVENT_HANDLE_* */
        virEventHandleCallback cb;
        void *opaque;
        virFreeCallback ff;
        EventSource *src;
        bool deleted;
        bool dirty; /* changed from another thread: the loop thread applies it */
        struct LvWatch *next;
} LvWatch;

typedef struct LvTimeout {
        int id;
        int frequency; /* ms; -1 disabled */
        virEventTimeoutCallback cb;
        void *opaque;
        virFreeCallback ff;
        EventSource *src;
        bool deleted;
        bool dirty;
        struct LvTimeout *next;
} LvTimeout;

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

/* virEventRegisterImpl() takes no user data, so the implementation needs one process-wide pointer. */
static LvEvents *lv_events;

static uint32_t lv_to_epoll(int ev) {
        uint32_t e = 0;
        if (ev & VIR_EVENT_HANDLE_READABLE)
                e |= EPOLLIN;
        if (ev & VIR_EVENT_HANDLE_WRITABLE)
                e |= EPOLLOUT;
        return e;
}

static int lv_from_epoll(uint32_t e) {
        int ev = 0;
        if (e & EPOLLIN)
                ev |= VIR_EVENT_HANDLE_READABLE;
        if (e & EPOLLOUT)
                ev |= VIR_EVENT_HANDLE_WRITABLE;
        if (e & EPOLLERR)
                ev |= VIR_EVENT_HANDLE_ERROR;
        if (e & EPOLLHUP)
                ev |= VIR_EVENT_HANDLE_HANGUP;
        return ev;
}

static bool lv_on_owner(void) {
        return pthread_equal(pthread_self(), lv_events->owner);
}

static void lv_wake(LvEvents *le) {
        uint64_t one = 1;
        if (write(le->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
                log_debug("wake the event loop: %m");
}

/* Loop thread only. */
static void lv_reap(LvEvents *le) {
        LvWatch *dw = NULL;
        LvTimeout *dt = NULL;
        pthread_mutex_lock(&le->lock);
        for (LvWatch **w = &le->watches; *w;) {
                if ((*w)->deleted) {
                        LvWatch *d = *w;
                        *w = d->next;
                        if (d->src)
                                event_source_free(d->src);
                        d->next = dw;
                        dw = d;
                } else
                        w = &(*w)->next;
        }
        for (LvTimeout **t = &le->timeouts; *t;) {
                if ((*t)->deleted) {
                        LvTimeout *d = *t;
                        *t = d->next;
                        if (d->src)
                                event_source_free(d->src);
                        d->next = dt;
                        dt = d;
                } else
                        t = &(*t)->next;
        }
        pthread_mutex_unlock(&le->lock);
        while (dw) {
                LvWatch *d = dw;
                dw = d->next;
                if (d->ff)
                        d->ff(d->opaque);
                free(d);
        }
        while (dt) {
                LvTimeout *d = dt;
                dt = d->next;
                if (d->ff)
                        d->ff(d->opaque);
                free(d);
        }
}

static int on_reaper(EventSource *s, void *userdata) {
        LvEvents *le = userdata;
        (void) s;
        le->reaper = NULL;
        lv_reap(le);
        return -ECANCELED;
}

/* Loop thread only. */
static void lv_schedule_reap(LvEvents *le) {
        if (le->reaper)
                return;
        if (event_add_timer(le->loop, 1, 0, on_reaper, le, &le->reaper) < 0)
                le->reaper = NULL; /* reaped at teardown instead */
}

static int on_watch(EventSource *s, int fd, uint32_t revents, void *userdata) {
        LvWatch *w = userdata;
        (void) s;
        pthread_mutex_lock(&lv_events->lock);
        bool live = !w->deleted && w->cb && (w->events & (VIR_EVENT_HANDLE_READABLE | VIR_EVENT_HANDLE_WRITABLE));
        virEventHandleCallback cb = w->cb;
        int id = w->id;
        void *opaque = w->opaque;
        pthread_mutex_unlock(&lv_events->lock);
        if (live)
                cb(id, fd, lv_from_epoll(revents), opaque);
        return 0;
}

static int lv_watch_apply(LvWatch *w) {
        uint32_t want = lv_to_epoll(w->events);
        if (want == 0) {
                if (w->src) {
                        event_source_free(w->src);
                        w->src = NULL;
                }
                return 0;
        }
        if (w->src)
                return event_source_set_io_events(w->src, want);
        return event_add_io(lv_events->loop, w->fd, want, on_watch, w, &w->src);
}

static int lv_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        if (!lv_events)
                return -1;
        LvWatch *w = calloc(1, sizeof *w);
        if (!w)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        *w = (LvWatch){ .id = ++lv_events->next_id, .fd = fd, .events = events, .cb = cb, .opaque = opaque, .ff = ff };
        if (lv_on_owner()) {
                if (lv_watch_apply(w) < 0) {
                        pthread_mutex_unlock(&lv_events->lock);
                        free(w);
                        return -1;
                }
        } else {
                w->dirty = true;
                lv_wake(lv_events);
        }
        w->next = lv_events->watches;
        lv_events->watches = w;
        int id = w->id;
        pthread_mutex_unlock(&lv_events->lock);
        return id;
}

static LvWatch *lv_find_watch(int id) {
        if (!lv_events)
                return NULL;
        for (LvWatch *w = lv_events->watches; w; w = w->next)
                if (w->id == id && !w->deleted)
                        return w;
        return NULL;
}

static void lv_update_handle(int id, int events) {
        if (!lv_events)
                return;
        pthread_mutex_lock(&lv_events->lock);
        LvWatch *w = lv_find_watch(id);
        if (w) {
                w->events = events;
                if (!lv_on_owner()) {
                        w->dirty = true;
                        lv_wake(lv_events);
                } else if (lv_watch_apply(w) < 0)
                        log_warning("libvirt event loop: cannot watch fd %d", w->fd);
        }
        pthread_mutex_unlock(&lv_events->lock);
}

static int lv_remove_handle(int id) {
        if (!lv_events)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        LvWatch *w = lv_find_watch(id);
        if (!w) {
                pthread_mutex_unlock(&lv_events->lock);
                return -1;
        }
        w->deleted = true;
        bool owner = lv_on_owner();
        if (owner && w->src) {
                event_source_free(w->src);
                w->src = NULL;
        }
        if (!owner) {
                w->dirty = true;
                lv_wake(lv_events);
        }
        pthread_mutex_unlock(&lv_events->lock);
        if (owner)
                lv_schedule_reap(lv_events);
        return 0;
}

static int on_timeout(EventSource *s, void *userdata) {
        LvTimeout *t = userdata;
        (void) s;
        pthread_mutex_lock(&lv_events->lock);
        bool live = !t->deleted && t->frequency >= 0 && t->cb;
        virEventTimeoutCallback cb = t->cb;
        int id = t->id;
        void *opaque = t->opaque;
        pthread_mutex_unlock(&lv_events->lock);
        if (live)
                cb(id, opaque);
        return 0;
}

static int lv_timeout_apply(LvTimeout *t) {
        if (t->src) {
                event_source_free(t->src);
                t->src = NULL;
        }
        if (t->frequency < 0)
                return 0;
        uint64_t usec = t->frequency == 0 ? 1 : (uint64_t) t->frequency * 1000;
        return event_add_timer(lv_events->loop, usec, usec, on_timeout, t, &t->src);
}

static int lv_add_timeout(int frequency, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        if (!lv_events)
                return -1;
        LvTimeout *t = calloc(1, sizeof *t);
        if (!t)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        *t = (LvTimeout){ .id = ++lv_events->next_id, .frequency = frequency, .cb = cb, .opaque = opaque, .ff = ff };
        if (lv_on_owner()) {
                if (lv_timeout_apply(t) < 0) {
                        pthread_mutex_unlock(&lv_events->lock);
                        free(t);
                        return -1;
                }
        } else {
                t->dirty = true;
                lv_wake(lv_events);
        }
        t->next = lv_events->timeouts;
        lv_events->timeouts = t;
        int id = t->id;
        pthread_mutex_unlock(&lv_events->lock);
        return id;
}

static LvTimeout *lv_find_timeout(int id) {
        if (!lv_events)
                return NULL;
        for (LvTimeout *t = lv_events->timeouts; t; t = t->next)
                if (t->id == id && !t->deleted)
                        return t;
        return NULL;
}

static void lv_update_timeout(int id, int frequency) {
        if (!lv_events)
                return;
        pthread_mutex_lock(&lv_events->lock);
        LvTimeout *t = lv_find_timeout(id);
        if (t) {
                t->frequency = frequency;
                if (!lv_on_owner()) {
                        t->dirty = true;
                        lv_wake(lv_events);
                } else if (lv_timeout_apply(t) < 0)
                        log_warning("libvirt event loop: cannot arm timer %d", id);
        }
        pthread_mutex_unlock(&lv_events->lock);
}

static int lv_remove_timeout(int id) {
        if (!lv_events)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        LvTimeout *t = lv_find_timeout(id);
        if (!t) {
                pthread_mutex_unlock(&lv_events->lock);
                return -1;
        }
        t->deleted = true;
        bool owner = lv_on_owner();
        if (owner && t->src) {
                event_source_free(t->src);
                t->src = NULL;
        }
        if (!owner) {
                t->dirty = true;
                lv_wake(lv_events);
        }
        pthread_mutex_unlock(&lv_events->lock);
        if (owner)
                lv_schedule_reap(lv_events);
        return 0;
}

/* Loop thread: applies what other threads changed. */
static int on_lv_wake(EventSource *s, int fd, uint32_t revents, void *userdata) {
        LvEvents *le = userdata;
        uint64_t n;
        bool reap = false;
        (void) s;
        (void) revents;
        if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
                return 0;
        pthread_mutex_lock(&le->lock);
        for (LvWatch *w = le->watches; w; w = w->next) {
                if (!w->dirty)
                        continue;
                w->dirty = false;
                if (w->deleted) {
                        if (w->src)
                                event_source_free(w->src);
                        w->src = NULL;
                        reap = true;
                } else if (lv_watch_apply(w) < 0)
                        log_warning("libvirt event loop: cannot watch fd %d", w->fd);
        }
        for (LvTimeout *t = le->timeouts; t; t = t->next) {
                if (!t->dirty)
                        continue;
                t->dirty = false;
                if (t->deleted) {
                        if (t->src)
                                event_source_free(t->src);
                        t->src = NULL;
                        reap = true;
                } else if (lv_timeout_apply(t) < 0)
                        log_warning("libvirt event loop: cannot arm timer %d", t->id);
        }
        pthread_mutex_unlock(&le->lock);
        if (reap)
                lv_schedule_reap(le);
        return 0;
}

/* Teardown after virConnectClose: whatever libvirt did not remove is released here. */
static void lv_events_done(LvEvents *le) {
        for (LvWatch *w = le->watches; w; w = w->next) {
                if (w->src)
                        event_source_free(w->src);
                w->src = NULL;
                w->deleted = true;
        }
        for (LvTimeout *t = le->timeouts; t; t = t->next) {
                if (t->src)
                        event_source_free(t->src);
                t->src = NULL;
                t->deleted = true;
        }
        if (le->reaper)
                event_source_free(le->reaper);
        le->reaper = NULL;
        lv_reap(le);
        if (le->wake_src)
                event_source_free(le->wake_src);
        le->wake_src = NULL;
        if (le->wake_fd >= 0)
                close(le->wake_fd);
        le->wake_fd = -1;
}

/* ------------------------------------------------------------------ the launcher */

typedef struct Client {
        struct Runtime *rt;
        int fd;
        EventSource *src;
        char buf[CLIENT_BUF];
        size_t len;
} Client;

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
        struct MigJob *mig;
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
} Runtime;

typedef struct MigJob {
        Runtime *rt;
        pthread_t tid;
        virDomainPtr dom; /* own reference */
        KvMigrateParams params;
        KvMigrateResult result;
        int r;
        int efd;
        EventSource *src;
} MigJob;

static void libvirt_quiet(void *userdata, virErrorPtr err) {
        (void) userdata;
        (void) err; /* reported by the caller through virGetLastErrorMessage() */
}

static void rt_write_status(Runtime *rt) {
        int r = launch_status_write(&rt->st, rt->status_file);
        if (r < 0)
                log_warning_errno(r, "write status file '%s': %m", rt->status_file);
}

static void rt_set_phase(Runtime *rt, LaunchPhase phase, const char *fmt, ...) _printf_(3, 4);
static void rt_set_phase(Runtime *rt, LaunchPhase phase, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rt->st.reason, sizeof rt->st.reason, fmt, ap);
        va_end(ap);
        bool changed = rt->st.phase != phase;
        rt->st.phase = phase;
        if (phase == LAUNCH_PHASE_RUNNING && rt->st.started_at == 0)
                rt->st.started_at = (int64_t) time(NULL);
        if ((phase == LAUNCH_PHASE_SUCCEEDED || phase == LAUNCH_PHASE_FAILED || phase == LAUNCH_PHASE_MIGRATED) &&
            rt->st.finished_at == 0)
                rt->st.finished_at = (int64_t) time(NULL);
        if (changed)
                log_info("phase %s: %s", launch_phase_to_string(phase), rt->st.reason);
        rt_write_status(rt);
}

static void rt_finish(Runtime *rt, LaunchPhase phase, int exit_code, const char *reason) {
        if (rt->done)
                return;
        rt->done = true;
        rt->exit_code = exit_code;
        rt_set_phase(rt, phase, "%s", reason);
        event_loop_exit(rt->loop, exit_code);
}


static int64_t realtime_ms(void) {
        return (int64_t) (realtime_usec() / 1000);
}

/* netd notifications: best effort, a short timeout, a warning when netd does not answer. */
static void rt_netd(Runtime *rt, const char *op, json_t *args /* stolen */) {
        if (!rt->o->netd_socket || !args) {
                json_decref(args);
                return;
        }
        json_t *res = NULL;
        KvErr e = {};
        uint64_t t0 = now_usec();
        int r = proto_call_path(rt->o->netd_socket, op, args, 2000, &res, &e);
        if (r < 0)
                log_warning("netd '%s' at %s: %s%s%s", op, rt->o->netd_socket, e.msg[0] ? e.msg : strerror(-r),
                            e.details[0] ? ": " : "", e.details);
        else
                log_info("netd '%s' answered in %" PRIu64 " us", op, now_usec() - t0);
        json_decref(res);
        json_decref(args);
}

static void rt_netd_source(Runtime *rt, const char *phase, char *reason) {
        LaunchMigrationStatus *m = &rt->st.mig;
        MigSourceMsg msg = { .vm = { .vm_namespace = rt->v->namespace, .vm_name = rt->v->name },
                             .phase = mig_phase_from_string(phase),
                             .target = m->dest,
                             .downtime_ms = (long long) m->downtime_ms,
                             .total_ms = (long long) m->total_ms,
                             .reason = reason ? reason : "" };
        rt_netd(rt, MIGPROTO_SOURCE, mig_source_msg_to_json(&msg));
}

static void rt_mig_take_stats(Runtime *rt, const KvMigrateResult *r) {
        LaunchMigrationStatus *m = &rt->st.mig;
        m->have_stats = true;
        m->downtime_ms = r->downtime_ms;
        m->total_ms = r->total_ms;
        m->data_bytes = r->data_bytes;
        m->memory_iterations = r->memory_iterations;
}

static void rt_mig_finish_success(Runtime *rt) {
        LaunchMigrationStatus *m = &rt->st.mig;
        if (rt->mig_stats_timer)
                event_source_free(rt->mig_stats_timer);
        rt->mig_stats_timer = NULL;
        if (!m->have_stats && rt->have_event_stats)
                rt_mig_take_stats(rt, &rt->event_stats);
        m->state = LAUNCH_MIG_COMPLETED;
        m->finished_at_ms = realtime_ms();
        log_info("migration to %s completed: downtime %" PRIu64 " ms, total %" PRIu64 " ms, %" PRIu64
                 " bytes, %" PRIu64 " memory iterations%s",
                 m->dest, m->downtime_ms, m->total_ms, m->data_bytes, m->memory_iterations,
                 m->have_stats ? "" : " (no statistics from libvirt)");
        rt_netd_source(rt, "completed", NULL);
        rt->mig_succeeded = true;
        if (rt->migrated_away)
                rt_finish(rt, LAUNCH_PHASE_MIGRATED, LAUNCH_EXIT_OK, "live-migrated to another node");
        else
                rt_write_status(rt);
}

static int on_mig_stats_timeout(EventSource *s, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        rt->mig_stats_timer = NULL;
        rt_mig_finish_success(rt);
        return -ECANCELED;
}

static void mig_job_free(MigJob *j) {
        if (!j)
                return;
        if (j->src)
                event_source_free(j->src);
        if (j->efd >= 0)
                close(j->efd);
        if (j->dom)
                virDomainFree(j->dom);
        kv_migrate_params_done(&j->params);
        free(j);
}

static void *mig_worker(void *arg) {
        MigJob *j = arg;
        j->r = kv_migrate_run(j->dom, &j->params, &j->result);
        uint64_t one = 1;
        while (write(j->efd, &one, sizeof one) < 0 && errno == EINTR)
                ;
        return NULL;
}

/* Loop thread: the worker is done. */
static int on_mig_done(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runtime *rt = userdata;
        MigJob *j = rt->mig;
        (void) s;
        (void) fd;
        (void) revents;
        if (!j)
                return -ECANCELED;
        pthread_join(j->tid, NULL);
        rt->mig = NULL;
        LaunchMigrationStatus *m = &rt->st.mig;
        m->wall_ms = j->result.wall_ms;
        if (j->r >= 0) {
                if (j->result.have_stats)
                        rt_mig_take_stats(rt, &j->result);
                mig_job_free(j);
                if (!m->have_stats && !rt->have_event_stats &&
                    event_add_timer(rt->loop, 2 * 1000000ULL, 0, on_mig_stats_timeout, rt, &rt->mig_stats_timer) == 0)
                        return -ECANCELED; /* JOB_COMPLETED usually follows at once */
                rt_mig_finish_success(rt);
                return -ECANCELED;
        }
        m->state = rt->mig_cancel && !j->result.timed_out ? LAUNCH_MIG_CANCELLED : LAUNCH_MIG_FAILED;
        m->finished_at_ms = realtime_ms();
        snprintf(m->error, sizeof m->error, "libvirt migration failed: %.480s",
                 j->result.error[0] ? j->result.error : "unknown error");
        log_warning("migration to %s %s: %s; the domain keeps running here", m->dest,
                    launch_migration_state_to_string(m->state), m->error);
        rt_netd_source(rt, "aborted", m->error);
        rt->mig_cancel = false;
        mig_job_free(j);
        rt_write_status(rt);
        return -ECANCELED;
}

static void on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
                             void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        const char *name = virDomainGetName(dom);
        if (!name || !streq(name, rt->st.domain))
                return;
        KvMigrateResult r = {};
        if (kv_migrate_stats_from_params(params, nparams, &r) <= 0)
                return;
        log_debug("job completed: downtime %" PRIu64 " ms, total %" PRIu64 " ms", r.downtime_ms, r.total_ms);
        rt->event_stats = r;
        rt->have_event_stats = true;
        if (rt->st.mig.incoming) {
                if (!rt->st.mig.have_stats)
                        rt_mig_take_stats(rt, &r);
                rt_write_status(rt);
        } else if (rt->mig_stats_timer)
                rt_mig_finish_success(rt);
}

/* {"op":"migrate","args":{...}}: validated here, run by a worker thread. */
static int rt_start_migration(Runtime *rt, json_t *args, KvErr *e) {
        if (rt->done || rt->st.shutting_down)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "migrate: refused, the launcher is shutting down");
        if (rt->st.phase != LAUNCH_PHASE_RUNNING || !rt->dom)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "migrate: the domain is not running (phase %s)",
                                 launch_phase_to_string(rt->st.phase));
        if (rt->mig || rt->mig_stats_timer || rt->mig_succeeded)
                return kverr_set(e, KV_ERR_EXISTS, -EBUSY, "migrate: a migration to '%s' is already in progress",
                                 rt->st.mig.dest);
        int rs = launch_migration_check_storage(rt->v, "migrate", e);
        if (rs < 0)
                return rs;
        if (!rt->st.migratable)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                 "migrate: domain '%s' was started with autodestroy (tied to the launcher's "
                                 "connection), which libvirt cannot migrate: start the launcher with --migratable",
                                 rt->st.domain);
        KvMigrateParams p = {};
        int r = kv_migrate_params_parse(args, "migrate", &p, e);
        if (r < 0)
                return r;
        /* The target QEMU uses the target launcher's files (serial log, seed ISO): same VMI, same
         * NICs, other paths. */
        char *xml = NULL;
        r = launch_migration_dest_xml(rt->v, rt->st.nics, rt->st.n_nics, rt->o->accel, p.dest_state_dir,
                                      p.dest_serial_log, &xml, e);
        if (r < 0) {
                kv_migrate_params_done(&p);
                return r;
        }
        kv_migrate_params_set_dest_xml(&p, xml);
        /* launch_migration_check_storage() passed: the seed ISOs are node-local but rebuilt by the
         * target launcher, which libvirt's shared-storage check cannot know. */
        p.storage_checked = rt->v->n_disks > 0;
        MigJob *j = calloc(1, sizeof *j);
        if (!j) {
                kv_migrate_params_done(&p);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        j->rt = rt;
        j->params = p;
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (j->efd < 0 || virDomainRef(rt->dom) < 0) {
                r = negative_errno();
                mig_job_free(j);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migrate: eventfd");
        }
        j->dom = rt->dom;
        r = event_add_io(rt->loop, j->efd, EPOLLIN, on_mig_done, rt, &j->src);
        if (r < 0) {
                mig_job_free(j);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migrate: watch eventfd");
        }

        LaunchMigrationStatus *m = &rt->st.mig;
        *m = (LaunchMigrationStatus){ .state = LAUNCH_MIG_RUNNING, .started_at_ms = realtime_ms() };
        snprintf(m->dest, sizeof m->dest, "%s", p.dest_uri);
        rt->have_event_stats = false;
        rt->mig_cancel = false;
        rt_netd_source(rt, "begin", NULL);
        rt->mig = j;
        r = pthread_create(&j->tid, NULL, mig_worker, j);
        if (r != 0) {
                rt->mig = NULL;
                m->state = LAUNCH_MIG_FAILED;
                snprintf(m->error, sizeof m->error, "cannot start the migration thread: %s", strerror(r));
                rt_netd_source(rt, "aborted", m->error);
                mig_job_free(j);
                rt_write_status(rt);
                return kverr_set(e, KV_ERR_INTERNAL, -r, "migrate: %s", m->error);
        }
        log_info("migrating '%s' to %s (%s, max downtime %u ms, bandwidth %" PRIu64 " MiB/s, timeout %u s)",
                 rt->st.domain, m->dest, j->params.tunnelled ? "tunnelled" : "direct", j->params.max_downtime_ms,
                 j->params.bandwidth_mibps, j->params.timeout_s);
        rt_write_status(rt);
        return 0;
}

static int rt_cancel_migration(Runtime *rt, const char *why, KvErr *e) {
        if (!rt->mig)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "migrate-cancel: no migration in progress");
        log_info("%s: aborting the migration to %s", why, rt->st.mig.dest);
        rt->mig_cancel = true;
        if (virDomainAbortJob(rt->dom) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -EIO, "migrate-cancel: virDomainAbortJob: %s",
                                 virGetLastErrorMessage());
        return 0;
}

/* --incoming: the migration did not arrive. Anything half-arrived is destroyed. */
static void rt_incoming_failed(Runtime *rt, const char *reason) {
        if (rt->dom) {
                rt->we_destroyed = true;
                if (virDomainDestroy(rt->dom) < 0)
                        log_debug("virDomainDestroy(incoming): %s", virGetLastErrorMessage());
        }
        rt->st.mig.state = LAUNCH_MIG_FAILED;
        rt->st.mig.finished_at_ms = realtime_ms();
        snprintf(rt->st.mig.error, sizeof rt->st.mig.error, "%s", reason);
        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_NO_MIGRATION, reason);
}

static int on_incoming_timeout(EventSource *s, void *userdata) {
        Runtime *rt = userdata;
        char msg[128];
        (void) s;
        rt->incoming_timer = NULL;
        snprintf(msg, sizeof msg, "incoming migration: the domain did not arrive within %u s",
                 rt->o->incoming_timeout_s ? rt->o->incoming_timeout_s : 300);
        rt_incoming_failed(rt, msg);
        return -ECANCELED;
}

/* --incoming: the domain resumed here. netd first (the guest's network is down until then). */
static void rt_incoming_resumed(Runtime *rt, virDomainPtr dom) {
        uint64_t t0 = now_usec();
        rt->st.mig.resumed_at_us = (int64_t) realtime_usec();
        MigActivateMsg msg = { .vm = { .vm_namespace = rt->v->namespace, .vm_name = rt->v->name } };
        rt_netd(rt, MIGPROTO_ACTIVATE, mig_activate_msg_to_json(&msg));
        if (!rt->dom && virDomainRef(dom) == 0)
                rt->dom = dom;
        if (rt->incoming_timer)
                event_source_free(rt->incoming_timer);
        rt->incoming_timer = NULL;
        rt->st.mig.state = LAUNCH_MIG_COMPLETED;
        rt->st.mig.finished_at_ms = realtime_ms();
        if (rt->have_event_stats && !rt->st.mig.have_stats)
                rt_mig_take_stats(rt, &rt->event_stats);
        rt_set_phase(rt, LAUNCH_PHASE_RUNNING, "incoming migration completed: domain resumed here (netd notified in %" PRIu64 " us)",
                     now_usec() - t0);
}

static int on_grace_expired(EventSource *s, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        rt->grace_timer = NULL;
        if (rt->done || !rt->dom || rt->conn_lost)
                return -ECANCELED;
        log_warning("guest did not power off within %" PRId64 " s: destroying the domain", rt->grace);
        rt->we_destroyed = true;
        if (virDomainDestroy(rt->dom) < 0) {
                virErrorPtr err = virGetLastError();
                if (err && err->code == VIR_ERR_NO_DOMAIN)
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED,
                                  "domain vanished during the grace period");
                else
                        log_error("virDomainDestroy: %s", virGetLastErrorMessage());
        }
        return -ECANCELED;
}

/* A press that arrives before the guest's ACPI daemon runs is lost: press again every few seconds
 * until the grace period ends. */
static int on_press_again(EventSource *s, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        if (rt->done || !rt->dom || rt->conn_lost) {
                rt->press_timer = NULL;
                return -ECANCELED;
        }
        if (virDomainShutdownFlags(rt->dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0)
                log_debug("virDomainShutdownFlags(ACPI power button): %s", virGetLastErrorMessage());
        return 0;
}

/* SIGTERM/SIGINT or {"op":"shutdown"}. */
static void rt_request_shutdown(Runtime *rt, const char *why) {
        if (rt->done)
                return;
        if (rt->st.shutting_down) {
                log_info("%s: shutdown already in progress", why);
                return;
        }
        if (rt->st.phase == LAUNCH_PHASE_WAITING_FOR_MIGRATION) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s while waiting for the incoming migration", why);
                rt->st.shutting_down = true;
                rt_incoming_failed(rt, msg);
                return;
        }
        if (rt->mig) {
                KvErr e = {};
                if (rt_cancel_migration(rt, why, &e) < 0)
                        log_warning("%s", e.msg);
        }
        rt->st.shutting_down = true;
        log_info("%s: pressing the ACPI power button of '%s' (grace period %" PRId64 " s)", why, rt->st.domain,
                 rt->grace);
        rt_set_phase(rt, rt->st.phase, "%s: graceful shutdown requested (grace period %" PRId64 " s)", why,
                     rt->grace);
        if (rt->grace > 0 && virDomainShutdownFlags(rt->dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0) {
                virErrorPtr err = virGetLastError();
                if (err && err->code == VIR_ERR_NO_DOMAIN) {
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED, "domain vanished");
                        return;
                }
                log_warning("virDomainShutdownFlags(ACPI power button): %s; destroying at once",
                            virGetLastErrorMessage());
                rt->grace = 0;
        }
        if (rt->grace > LAUNCH_ACPI_REPEAT_SEC &&
            event_add_timer(rt->loop, LAUNCH_ACPI_REPEAT_SEC * 1000000ULL, LAUNCH_ACPI_REPEAT_SEC * 1000000ULL,
                            on_press_again, rt, &rt->press_timer) < 0)
                rt->press_timer = NULL;
        uint64_t usec = rt->grace > 0 ? (uint64_t) rt->grace * 1000000ULL : 1;
        if (event_add_timer(rt->loop, usec, 0, on_grace_expired, rt, &rt->grace_timer) < 0) {
                log_error("cannot arm the grace timer: destroying at once");
                on_grace_expired(NULL, rt);
        }
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        (void) s;
        rt_request_shutdown(userdata, strsignal(signo));
        return 0;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        const char *name = virDomainGetName(dom);
        if (!name || !streq(name, rt->st.domain))
                return 0;
        log_debug("lifecycle event %d detail %d", event, detail);
        if (rt->st.phase == LAUNCH_PHASE_WAITING_FOR_MIGRATION && !rt->done) {
                log_info("incoming domain '%s': lifecycle event %d detail %d", name, event, detail);
                if (event == VIR_DOMAIN_EVENT_STARTED) {
                        if (!rt->dom && virDomainRef(dom) == 0)
                                rt->dom = dom;
                        rt->domain_created = true;
                        rt->st.mig.state = LAUNCH_MIG_RUNNING;
                        rt_write_status(rt);
                } else if (event == VIR_DOMAIN_EVENT_RESUMED) {
                        rt_incoming_resumed(rt, dom);
                } else if (event == VIR_DOMAIN_EVENT_STOPPED || event == VIR_DOMAIN_EVENT_UNDEFINED) {
                        if (rt->dom)
                                virDomainFree(rt->dom);
                        rt->dom = NULL;
                        rt_incoming_failed(rt, "incoming migration failed: the domain went away before it resumed here");
                }
                return 0;
        }
        if (event == VIR_DOMAIN_EVENT_SUSPENDED && detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED &&
            rt->st.mig.state == LAUNCH_MIG_RUNNING && !rt->st.mig.incoming && !rt->st.mig.paused_at_us) {
                rt->st.mig.paused_at_us = (int64_t) realtime_usec();
                log_info("migration: domain paused for the switchover");
                /* From now on the guest's packets are better off at the target (netd's early switchover). */
                rt_netd_source(rt, "switchover", NULL);
        }
        if (event == VIR_DOMAIN_EVENT_STOPPED) {
                switch (detail) {
                case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
                        rt_finish(rt, LAUNCH_PHASE_SUCCEEDED, LAUNCH_EXIT_OK,
                                  rt->st.shutting_down ? "guest powered off after the ACPI power button"
                                                       : "guest powered off");
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED,
                                  rt->we_destroyed ? "destroyed: the guest did not power off within the grace period"
                                                   : "domain destroyed (not by the launcher)");
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED, "guest crashed");
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
                        /* Our own migration finishes once the worker reported (statistics, netd). */
                        rt->migrated_away = true;
                        if (!rt->mig && !rt->mig_stats_timer)
                                rt_finish(rt, LAUNCH_PHASE_MIGRATED, LAUNCH_EXIT_OK, "migrated to another node");
                        break;
                case VIR_DOMAIN_EVENT_STOPPED_FAILED:
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED, "QEMU failed (see the domain log)");
                        break;
                default:
                        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED, "domain stopped");
                        break;
                }
        } else if (event == VIR_DOMAIN_EVENT_CRASHED) {
                log_warning("guest crashed (detail %d)", detail);
        }
        return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT)
                return;
        static const char *const names[] = { "error", "end of file", "keepalive timeout", "client" };
        char msg[128];
        snprintf(msg, sizeof msg, "libvirt connection lost (%s); domain state unknown",
                 reason >= 0 && (size_t) reason < ELEMENTSOF(names) ? names[reason] : "unknown");
        rt->conn_lost = true;
        rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_CONN_LOST, msg);
}

/* ------------------------------------------------------------------ status socket */

static void client_free(Client *c) {
        if (!c)
                return;
        for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
                if (c->rt->clients[i] == c)
                        c->rt->clients[i] = NULL;
        event_source_free(c->src);
        close(c->fd);
        free(c);
}

static int client_reply(Client *c, json_t *reply /* stolen */) {
        if (!reply)
                return -ENOMEM;
        char *text = json_dumps(reply, JSON_COMPACT);
        json_decref(reply);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; write len + 1 bytes */
        size_t off = 0;
        int r = 0;
        while (off < len + 1) {
                ssize_t n = send(c->fd, text + off, len + 1 - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno(); /* a client that does not read its (small) reply is dropped */
                        break;
                }
                off += (size_t) n;
        }
        free(text);
        return r;
}

static json_t *rt_error(int code, const char *msg) {
        KvErr e = {};
        kverr_set(&e, code, -EINVAL, "%s", msg);
        return proto_reply_error(&e);
}

static int client_handle_line(Client *c, const char *line, size_t len) {
        Runtime *rt = c->rt;
        json_t *req = NULL;
        KvErr e = {};
        if (json_parse_object(line, len, CLIENT_BUF, "request", &req, &e) < 0)
                return client_reply(c, proto_reply_error(&e));
        const char *op = NULL;
        int r = json_get_string(req, "request", "op", true, &op, &e);
        json_t *reply;
        if (r < 0)
                reply = proto_reply_error(&e);
        else if (streq(op, "status"))
                reply = proto_reply_ok(launch_status_to_json(&rt->st));
        else if (streq(op, "shutdown")) {
                rt_request_shutdown(rt, "shutdown requested on the status socket");
                reply = proto_reply_ok(launch_status_to_json(&rt->st));
        } else if (streq(op, "migrate")) {
                json_t *args = json_object_get(req, "args");
                if (rt_start_migration(rt, args, &e) < 0)
                        reply = proto_reply_error(&e);
                else
                        reply = proto_reply_ok(launch_status_to_json(&rt->st));
        } else if (streq(op, "migrate-cancel")) {
                if (rt_cancel_migration(rt, "migrate-cancel requested on the status socket", &e) < 0)
                        reply = proto_reply_error(&e);
                else
                        reply = proto_reply_ok(launch_status_to_json(&rt->st));
        } else {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "request: 'op' must be status, shutdown, migrate or migrate-cancel, got '%.64s'", op);
                reply = rt_error(KV_ERR_INVALID_CONFIG, msg);
        }
        json_decref(req);
        return client_reply(c, reply);
}

static int on_client(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        (void) s;
        (void) revents;
        ssize_t n = recv(fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                client_free(c);
                return 0;
        }
        c->len += (size_t) n;
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                if (!nl)
                        break;
                size_t l = (size_t) (nl - c->buf);
                int r = client_handle_line(c, c->buf, l);
                if (r < 0) {
                        client_free(c);
                        return 0;
                }
                memmove(c->buf, nl + 1, c->len - l - 1);
                c->len -= l + 1;
        }
        if (c->len == sizeof c->buf) {
                IGNORE_RESULT(client_reply(c, rt_error(KV_ERR_DECODE, "request: line too long")));
                client_free(c);
        }
        return 0;
}

static int on_accept(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        (void) revents;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        size_t slot;
        for (slot = 0; slot < STATUS_MAX_CLIENTS; slot++)
                if (!rt->clients[slot])
                        break;
        Client *c = slot < STATUS_MAX_CLIENTS ? calloc(1, sizeof *c) : NULL;
        if (!c) {
                close(cfd);
                return 0;
        }
        c->rt = rt;
        c->fd = cfd;
        if (event_add_io(rt->loop, cfd, EPOLLIN, on_client, c, &c->src) < 0) {
                close(cfd);
                free(c);
                return 0;
        }
        rt->clients[slot] = c;
        return 0;
}

static int rt_listen(Runtime *rt) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(rt->socket_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, rt->socket_path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* A socket that still answers belongs to a live launcher; a dead one's is replaced. */
        {
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
                        return -EADDRINUSE;
        }
        if (unlink(rt->socket_path) < 0 && errno != ENOENT)
                return negative_errno();
        mode_t old = umask(0177); /* 0600 from the start */
        int r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return negative_errno();
        if (listen(fd, 8) < 0)
                return negative_errno();
        r = event_add_io(rt->loop, fd, EPOLLIN, on_accept, rt, &rt->listen_src);
        if (r < 0)
                return r;
        rt->listen_fd = TAKE_FD(fd);
        return 0;
}

static void rt_unlisten(Runtime *rt) {
        for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
                client_free(rt->clients[i]);
        if (rt->listen_src)
                event_source_free(rt->listen_src);
        rt->listen_src = NULL;
        if (rt->listen_fd >= 0) {
                close(rt->listen_fd);
                rt->listen_fd = -1;
                if (unlink(rt->socket_path) < 0 && errno != ENOENT)
                        log_warning_errno(negative_errno(), "remove socket '%s': %m", rt->socket_path);
        }
}

/* ------------------------------------------------------------------ run */

static int rt_start_domain(Runtime *rt, const char *xml) {
        rt->conn = virConnectOpen(rt->o->uri);
        if (!rt->conn) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "cannot connect to libvirt at '%s': %s", rt->o->uri,
                             virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        if (virConnectSetKeepAlive(rt->conn, 5, 3) < 0)
                log_warning("libvirt keepalive: %s", virGetLastErrorMessage());
        if (virConnectRegisterCloseCallback(rt->conn, on_close, rt, NULL) == 0)
                rt->close_cb = true;

        virDomainPtr old = virDomainLookupByName(rt->conn, rt->st.domain);
        if (old) {
                virDomainFree(old);
                rt_set_phase(rt, LAUNCH_PHASE_FAILED,
                             "a domain named '%s' already exists in libvirt (another launcher, or one that was "
                             "killed: remove it with virsh destroy)",
                             rt->st.domain);
                return LAUNCH_EXIT_LIBVIRT;
        }
        /* The files only now: a domain of that name may still be running on them (a launcher killed
         * with --keep-on-exit); they are not touched then. */
        KvErr e = {};
        if (launch_prepare_files(rt->v, &rt->files, &e) < 0) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                return LAUNCH_EXIT_INVALID;
        }
        rt->lifecycle_cb = virConnectDomainEventRegisterAny(rt->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                            VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), rt, NULL);
        if (rt->lifecycle_cb < 0) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "register lifecycle events: %s", virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        rt->job_cb = virConnectDomainEventRegisterAny(rt->conn, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                                      VIR_DOMAIN_EVENT_CALLBACK(on_job_completed), rt, NULL);
        if (rt->job_cb < 0)
                log_warning("register job-completed events: %s (no migration statistics)", virGetLastErrorMessage());
        if (rt->st.migratable) {
                unsigned long hv = 0;
                const char *w = virConnectGetVersion(rt->conn, &hv) == 0 ? launch_migration_tcg_warning(rt->o->accel, hv)
                                                                          : NULL;
                if (w)
                        log_warning("%s", w);
        }
        if (rt->o->incoming) {
                uint32_t t = rt->o->incoming_timeout_s ? rt->o->incoming_timeout_s : 300;
                rt->st.mig = (LaunchMigrationStatus){ .state = LAUNCH_MIG_PENDING, .incoming = true,
                                                      .started_at_ms = realtime_ms() };
                if (event_add_timer(rt->loop, (uint64_t) t * 1000000ULL, 0, on_incoming_timeout, rt,
                                    &rt->incoming_timer) < 0) {
                        rt_set_phase(rt, LAUNCH_PHASE_FAILED, "cannot arm the incoming timeout");
                        return LAUNCH_EXIT_INTERNAL;
                }
                rt_set_phase(rt, LAUNCH_PHASE_WAITING_FOR_MIGRATION,
                             "waiting for domain '%s' to arrive by live migration (timeout %u s)", rt->st.domain, t);
                return LAUNCH_EXIT_OK;
        }
        rt->dom = virDomainCreateXML(rt->conn, xml,
                                     rt->o->keep_on_exit || rt->o->migratable ? 0 : VIR_DOMAIN_START_AUTODESTROY);
        if (!rt->dom) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "start domain '%s': %s", rt->st.domain,
                             virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        rt->domain_created = true;
        rt_set_phase(rt, LAUNCH_PHASE_RUNNING, "domain started");
        return LAUNCH_EXIT_OK;
}

/* The VM is gone for good when it ended (Succeeded, Failed, Migrated: a lifecycle event said so),
 * when it never started, or when it was tied to our connection (autodestroy) that is now closed. A
 * lost connection leaves the domain's state unknown (QEMU may still run on these files): they stay. */
static void rt_remove_files(Runtime *rt, int rc) {
        if (rt->files.n == 0)
                return;
        bool gone;
        if (rt->conn_lost)
                gone = false;
        else if (rt->done || !rt->domain_created)
                gone = true;
        else
                gone = !(rt->o->keep_on_exit || rt->o->migratable || rt->o->incoming);
        if (!gone) {
                log_warning("exit %d with the domain possibly still running: keeping its files in '%s'", rc,
                            rt->v->state_dir);
                launch_files_clear(&rt->files);
                return;
        }
        size_t n = rt->files.n;
        int r = launch_files_remove(&rt->files);
        if (r < 0)
                for (size_t i = 0; i < rt->files.n; i++)
                        log_warning("cannot remove '%s'%s: %s", rt->files.items[i].path,
                                    rt->files.items[i].dir ? " (directory)" : "", strerror(-r));
        else
                log_info("removed the %zu files the launcher made in '%s'", n, rt->v->state_dir);
        launch_files_clear(&rt->files);
}

static void rt_disconnect(Runtime *rt) {
        if (!rt->conn)
                return;
        if (!rt->conn_lost) {
                if (rt->lifecycle_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->lifecycle_cb));
                if (rt->job_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->job_cb));
                if (rt->close_cb)
                        IGNORE_RESULT(virConnectUnregisterCloseCallback(rt->conn, on_close));
        }
        if (rt->dom)
                virDomainFree(rt->dom);
        rt->dom = NULL;
        IGNORE_RESULT(virConnectClose(rt->conn));
        rt->conn = NULL;
}

int launch_run(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchRunOptions *o) {
        Runtime rt = { .v = v, .o = o, .listen_fd = -1, .lifecycle_cb = -1, .job_cb = -1,
                       .exit_code = LAUNCH_EXIT_INTERNAL };
        LvEvents le = { .wake_fd = -1 };
        _cleanup_free_ char *name = launch_domain_name(v);
        _cleanup_free_ char *xml = NULL;
        int r, rc;

        if (!name)
                return log_error("out of memory"), LAUNCH_EXIT_INTERNAL;
        rt.grace = o->grace_seconds >= 0 ? o->grace_seconds : v->termination_grace_seconds;
        rt.st = (LaunchStatus){ .phase = LAUNCH_PHASE_SCHEDULED, .accel = o->accel, .nics = nics, .n_nics = n_nics,
                                .pid = getpid(), .grace_seconds = rt.grace,
                                .migratable = o->migratable || o->incoming };
        snprintf(rt.st.domain, sizeof rt.st.domain, "%s", name);
        snprintf(rt.st.vmi, sizeof rt.st.vmi, "%s/%s", v->namespace, v->name);

        KvErr e = {};
        if (o->incoming && launch_migration_check_storage(v, "--incoming", &e) < 0) {
                log_error("%s", e.msg);
                return LAUNCH_EXIT_INVALID;
        }
        if (o->migratable && launch_migration_check_storage(v, "--migratable", &e) < 0)
                log_warning("%s; migrate requests will be refused", e.msg);
        /* The state dir (status file, socket) first; the volume files once libvirt has no domain of
         * that name (rt_start_domain). */
        r = mkdir_p(v->state_dir, 0700);
        if (r < 0) {
                log_error_errno(r, "create state dir '%s': %m", v->state_dir);
                return LAUNCH_EXIT_INVALID;
        }
        LaunchWarnings w = {};
        LaunchDomainOptions dopt = { .accel = o->accel, .serial_log = o->serial_log };
        r = launch_domain_xml(v, nics, n_nics, &dopt, &w, &xml, &e);
        for (size_t i = 0; i < w.n; i++)
                fprintf(stderr, "warning: %s\n", w.items[i]);
        launch_warnings_clear(&w);
        if (r < 0) {
                log_error("%s", e.msg);
                return LAUNCH_EXIT_INVALID;
        }
        if ((o->status_file && asprintf(&rt.status_file, "%s", o->status_file) < 0) ||
            (!o->status_file && asprintf(&rt.status_file, "%s/status.json", v->state_dir) < 0) ||
            (o->socket_path && asprintf(&rt.socket_path, "%s", o->socket_path) < 0) ||
            (!o->socket_path && asprintf(&rt.socket_path, "%s/launcher.sock", v->state_dir) < 0)) {
                free(rt.status_file);
                return log_error("out of memory"), LAUNCH_EXIT_INTERNAL;
        }

        rc = LAUNCH_EXIT_INTERNAL;
        r = event_loop_new(&rt.loop);
        if (r < 0) {
                log_error_errno(r, "create event loop: %m");
                goto out;
        }
        if ((r = event_add_signal(rt.loop, SIGTERM, on_signal, &rt, NULL)) < 0 ||
            (r = event_add_signal(rt.loop, SIGINT, on_signal, &rt, NULL)) < 0) {
                log_error_errno(r, "signals: %m");
                goto out;
        }
        rt_set_phase(&rt, LAUNCH_PHASE_SCHEDULED, "connecting to libvirt at %s", o->uri);
        r = rt_listen(&rt);
        if (r < 0) {
                log_error_errno(r, "status socket '%s': %m", rt.socket_path);
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "status socket '%s': %s", rt.socket_path, strerror(-r));
                goto out;
        }

        le.loop = rt.loop;
        pthread_mutex_init(&le.lock, NULL);
        le.owner = pthread_self();
        le.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (le.wake_fd < 0 || event_add_io(rt.loop, le.wake_fd, EPOLLIN, on_lv_wake, &le, &le.wake_src) < 0) {
                log_error("cannot create the event loop's wake-up fd");
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "cannot create the event loop's wake-up fd");
                if (le.wake_fd >= 0)
                        close(le.wake_fd);
                le.wake_fd = -1;
                goto out;
        }
        lv_events = &le;
        virEventRegisterImpl(lv_add_handle, lv_update_handle, lv_remove_handle, lv_add_timeout, lv_update_timeout,
                             lv_remove_timeout);
        virSetErrorFunc(NULL, libvirt_quiet);

        rc = rt_start_domain(&rt, xml);
        if (rc != LAUNCH_EXIT_OK) {
                log_error("%s", rt.st.reason);
                goto out;
        }
        if (o->incoming)
                log_info("waiting for domain '%s' to arrive by live migration", rt.st.domain);
        else
                log_info("domain '%s' running (accel %s); SIGTERM shuts it down", rt.st.domain,
                         launch_accel_to_string(o->accel));
        r = event_loop_run(rt.loop);
        if (r < 0 && !rt.done) {
                log_error_errno(r, "event loop: %m");
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "event loop failed: %s", strerror(-r));
                rc = LAUNCH_EXIT_INTERNAL;
        } else
                rc = rt.exit_code;
        if (rc == LAUNCH_EXIT_OK)
                log_info("%s", rt.st.reason);
        else
                log_error("%s", rt.st.reason);
out:
        rt_unlisten(&rt);
        if (rt.mig) {
                /* The loop ended under a running migration (connection lost, ...): stop and join it. */
                if (!rt.conn_lost && rt.dom)
                        IGNORE_RESULT(virDomainAbortJob(rt.dom));
                pthread_join(rt.mig->tid, NULL);
                mig_job_free(rt.mig);
                rt.mig = NULL;
        }
        if (rt.mig_stats_timer)
                event_source_free(rt.mig_stats_timer);
        if (rt.incoming_timer)
                event_source_free(rt.incoming_timer);
        rt_disconnect(&rt);
        if (lv_events) {
                lv_events_done(&le);
                /* libvirt keeps our callbacks registered; with lv_events gone they are inert. */
                lv_events = NULL;
        }
        rt_remove_files(&rt, rc);
        if (rt.grace_timer)
                event_source_free(rt.grace_timer);
        if (rt.press_timer)
                event_source_free(rt.press_timer);
        if (lv_events == NULL && le.loop)
                pthread_mutex_destroy(&le.lock);
        /* The final status is written after the socket is gone (phase already terminal, or Scheduled
         * when the loop never ran). */
        if (rc != LAUNCH_EXIT_OK && rt.st.phase != LAUNCH_PHASE_FAILED)
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "%s", rt.st.reason[0] ? rt.st.reason : "launcher failed");
        else
                rt_write_status(&rt);
        event_loop_free(rt.loop);
        free(rt.status_file);
        free(rt.socket_path);
        return rc;
}
