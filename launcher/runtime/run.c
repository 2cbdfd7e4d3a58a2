/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher --run: one libvirt domain per process, driven from kvnet's epoll loop. The pieces
 * are in launcher/runtime/ (runtime.h lists them); here: the status file, phases, setup, teardown. */
#include <signal.h>
#include <stdarg.h>
#include <time.h>

#include "common/fileio.h"
#include "common/log.h"
#include "launcher/runtime/runtime.h"

static void libvirt_quiet(void *userdata, virErrorPtr err) {
        (void) userdata;
        (void) err; /* reported by the caller through virGetLastErrorMessage() */
}

void rt_write_status(Runtime *rt) {
        int r = launch_status_write(&rt->st, rt->status_file);
        if (r < 0)
                log_warning_errno(r, "write status file '%s': %m", rt->status_file);
}

void rt_set_phase(Runtime *rt, LaunchPhase phase, const char *fmt, ...) {
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

void rt_finish(Runtime *rt, LaunchPhase phase, int exit_code, const char *reason) {
        if (rt->done)
                return;
        rt->done = true;
        rt->exit_code = exit_code;
        rt_set_phase(rt, phase, "%s", reason);
        event_loop_exit(rt->loop, exit_code);
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

int launch_run(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchRunOptions *o) {
        Runtime rt = { .v = v, .o = o, .listen_fd = -1, .lifecycle_cb = -1, .job_cb = -1, .removed_cb = -1,
                       .removal_failed_cb = -1, .exit_code = LAUNCH_EXIT_INTERNAL };
        LvEvents le = { .wake_fd = -1 };
        _cleanup_free_ char *name = launch_domain_name(v);
        _cleanup_free_ char *xml = NULL;
        int r, rc;

        if (!name)
                return log_error("out of memory"), LAUNCH_EXIT_INTERNAL;
        rt.grace = o->grace_seconds >= 0 ? o->grace_seconds : v->termination_grace_seconds;
        rt.st = (LaunchStatus){ .phase = LAUNCH_PHASE_SCHEDULED, .accel = o->accel, .pid = getpid(),
                                .grace_seconds = rt.grace, .migratable = o->migratable || o->incoming };
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
        /* launch_domain_xml() checked that nics[i] belongs to v->interfaces[i]. */
        r = rt_nics_init(&rt, nics, n_nics);
        if (r < 0) {
                log_error_errno(r, "NIC list: %m");
                goto out;
        }
        r = event_loop_new(&rt.loop);
        if (r < 0) {
                log_error_errno(r, "create event loop: %m");
                goto out;
        }
        if ((r = event_add_signal(rt.loop, SIGTERM, rt_on_signal, &rt, NULL)) < 0 ||
            (r = event_add_signal(rt.loop, SIGINT, rt_on_signal, &rt, NULL)) < 0) {
                log_error_errno(r, "signals: %m");
                goto out;
        }
        rt_set_phase(&rt, LAUNCH_PHASE_SCHEDULED, "connecting to libvirt at %s", o->uri);
        kverr_clear(&e);
        r = rt_listen(&rt, &e);
        if (r < 0 && kverr_is_set(&e)) {
                log_error("%s", e.msg);
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "%s", e.msg);
                goto out;
        }
        if (r < 0) {
                log_error_errno(r, "status socket '%s': %m", rt.socket_path);
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "status socket '%s': %s", rt.socket_path, strerror(-r));
                goto out;
        }

        if (lv_events_register(&le, rt.loop) < 0) {
                log_error("cannot create the event loop's wake-up fd");
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "cannot create the event loop's wake-up fd");
                goto out;
        }
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
        rt_migration_stop(&rt);
        if (rt.incoming_timer)
                event_source_free(rt.incoming_timer);
        if (rt.reconnect_timer)
                event_source_free(rt.reconnect_timer);
        rt_disconnect(&rt);
        lv_events_unregister(&le);
        rt_remove_files(&rt, rc);
        if (rt.grace_timer)
                event_source_free(rt.grace_timer);
        if (rt.press_timer)
                event_source_free(rt.press_timer);
        /* The final status is written after the socket is gone (phase already terminal, or Scheduled
         * when the loop never ran). */
        if (rc != LAUNCH_EXIT_OK && rt.st.phase != LAUNCH_PHASE_FAILED)
                rt_set_phase(&rt, LAUNCH_PHASE_FAILED, "%s", rt.st.reason[0] ? rt.st.reason : "launcher failed");
        else
                rt_write_status(&rt);
        rt_nics_free(&rt); /* before the loop: pending detach timers */
        event_loop_free(rt.loop);
        free(rt.status_file);
        free(rt.socket_path);
        return rc;
}
