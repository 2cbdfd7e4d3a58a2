/* SPDX-License-Identifier: Apache-2.0 */
/* Live migration, source side: {"op":"migrate"} validated on the loop, run by a worker thread
 * (kv_migrate_run), its end and libvirt's statistics reported back to the loop; netd is told
 * begin, switchover, completed or aborted. */
#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "common/log.h"
#include "common/migproto.h"
#include "common/proto.h"
#include "launcher/runtime/runtime.h"

struct MigJob {
        Runtime *rt;
        pthread_t tid;
        virDomainPtr dom; /* own reference */
        KvMigrateParams params;
        KvMigrateResult result;
        int r;
        int efd;
        EventSource *src;
};

json_t *rt_netd_call(Runtime *rt, const char *op, json_t *args /* stolen */) {
        if (!rt->o->netd_socket || !args) {
                json_decref(args);
                return NULL;
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
        json_decref(args);
        return r < 0 ? NULL : res;
}

void rt_netd(Runtime *rt, const char *op, json_t *args /* stolen */) {
        json_decref(rt_netd_call(rt, op, args));
}

void rt_netd_source(Runtime *rt, MigPhase phase, const char *reason) {
        LaunchMigrationStatus *m = &rt->st.mig;
        MigSourceMsg msg = { .vm = { .vm_namespace = rt->v->namespace, .vm_name = rt->v->name },
                             .phase = phase,
                             .target = m->dest,
                             .downtime_ms = (long long) m->downtime_ms,
                             .total_ms = (long long) m->total_ms,
                             .reason = (char *) (reason ? reason : "") };
        rt_netd(rt, MIGPROTO_SOURCE, mig_source_msg_to_json(&msg));
}

void rt_mig_take_stats(Runtime *rt, const KvMigrateResult *r) {
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
        rt_netd_source(rt, MIG_PHASE_COMPLETED, NULL);
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
        rt_netd_source(rt, MIG_PHASE_ABORTED, m->error);
        rt->mig_cancel = false;
        mig_job_free(j);
        rt_write_status(rt);
        return -ECANCELED;
}

void rt_on_job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int nparams,
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
int rt_start_migration(Runtime *rt, json_t *args, KvErr *e) {
        if (rt->done || rt->st.shutting_down)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "migrate: refused, the launcher is shutting down");
        if (rt->st.phase != LAUNCH_PHASE_RUNNING || !rt->dom)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "migrate: the domain is not running (phase %s)",
                                 launch_phase_to_string(rt->st.phase));
        if (rt->mig || rt->mig_stats_timer || rt->mig_succeeded)
                return kverr_set(e, KV_ERR_EXISTS, -EBUSY, "migrate: a migration to '%s' is already in progress",
                                 rt->st.mig.dest);
        if (rt->st.paused)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EBUSY,
                                 "migrate: the VM is paused (virtctl pause); unpause it to migrate it");
        const char *detaching = NULL;
        if (rt_nics_detaching(rt, &detaching))
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY,
                                 "migrate: interface '%s' is being detached; retry once the guest released it", detaching);
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
         * NICs, other paths. After a NIC hot-plug or unplug libvirt's live XML has the device layout
         * (the hot-plugged NIC's PCI slot, the root ports): it is the one rewritten then. */
        char *xml = NULL;
        if (rt->nics_changed && (p.dest_state_dir || p.dest_serial_log)) {
                _cleanup_free_ char *live = virDomainGetXMLDesc(rt->dom, VIR_DOMAIN_XML_MIGRATABLE);
                if (!live) {
                        kv_migrate_params_done(&p);
                        return kverr_set(e, KV_ERR_INTERNAL, -EIO, "migrate: cannot read the live domain XML: %s",
                                         virGetLastErrorMessage());
                }
                r = launch_migration_rewrite_live_xml(live, rt->v, rt->o->serial_log, p.dest_state_dir,
                                                      p.dest_serial_log, &xml, e);
        } else
                r = launch_migration_dest_xml(rt->v, rt->nics, rt->n_nics, rt->o->accel, p.dest_state_dir,
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
        rt_netd_source(rt, MIG_PHASE_BEGIN, NULL);
        rt->mig = j;
        r = pthread_create(&j->tid, NULL, mig_worker, j);
        if (r != 0) {
                rt->mig = NULL;
                m->state = LAUNCH_MIG_FAILED;
                snprintf(m->error, sizeof m->error, "cannot start the migration thread: %s", strerror(r));
                rt_netd_source(rt, MIG_PHASE_ABORTED, m->error);
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

int rt_cancel_migration(Runtime *rt, const char *why, KvErr *e) {
        if (!rt->mig)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "migrate-cancel: no migration in progress");
        log_info("%s: aborting the migration to %s", why, rt->st.mig.dest);
        rt->mig_cancel = true;
        if (virDomainAbortJob(rt->dom) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -EIO, "migrate-cancel: virDomainAbortJob: %s",
                                 virGetLastErrorMessage());
        return 0;
}

void rt_migration_stop(Runtime *rt) {
        if (rt->mig) {
                /* The loop ended under a running migration (connection lost, ...): stop and join it. */
                if (!rt->conn_lost && rt->dom)
                        IGNORE_RESULT(virDomainAbortJob(rt->dom));
                pthread_join(rt->mig->tid, NULL);
                mig_job_free(rt->mig);
                rt->mig = NULL;
        }
        if (rt->mig_stats_timer)
                event_source_free(rt->mig_stats_timer);
        rt->mig_stats_timer = NULL;
}
