/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt connection: connect, start the domain, lifecycle and close events, disconnect. */
#include <inttypes.h>

#include "common/log.h"
#include "launcher/runtime/runtime.h"

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        const char *name = virDomainGetName(dom);
        if (!name || !streq(name, rt->st.domain))
                return 0;
        log_debug("lifecycle event %d detail %d", event, detail);
        if (rt->st.phase == LAUNCH_PHASE_WAITING_FOR_MIGRATION && !rt->done) {
                rt_incoming_event(rt, dom, event, detail);
                return 0;
        }
        if (event == VIR_DOMAIN_EVENT_SUSPENDED && detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED &&
            rt->st.mig.state == LAUNCH_MIG_RUNNING && !rt->st.mig.incoming && !rt->st.mig.paused_at_us) {
                rt->st.mig.paused_at_us = (int64_t) realtime_usec();
                log_info("migration: domain paused for the switchover");
                /* From now on the guest's packets are better off at the target (netd's early switchover). */
                rt_netd_source(rt, MIG_PHASE_SWITCHOVER, NULL);
        }
        rt_pause_event(rt, event, detail);
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

static void on_close(virConnectPtr conn, int reason, void *opaque);

/* The callbacks of one connection: lifecycle (required), job completed, device removed (required),
 * device removal failed, close. Returns 0 or a LAUNCH_EXIT_* code with the reason in the status. */
static int rt_register_events(Runtime *rt) {
        if (virConnectSetKeepAlive(rt->conn, 5, 3) < 0)
                log_warning("libvirt keepalive: %s", virGetLastErrorMessage());
        rt->close_cb = virConnectRegisterCloseCallback(rt->conn, on_close, rt, NULL) == 0;
        rt->lifecycle_cb = virConnectDomainEventRegisterAny(rt->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                            VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), rt, NULL);
        if (rt->lifecycle_cb < 0) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "register lifecycle events: %s", virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        rt->job_cb = virConnectDomainEventRegisterAny(rt->conn, NULL, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                                      VIR_DOMAIN_EVENT_CALLBACK(rt_on_job_completed), rt, NULL);
        if (rt->job_cb < 0)
                log_warning("register job-completed events: %s (no migration statistics)", virGetLastErrorMessage());
        /* detach-interface: the guest released the device (or refused to). */
        rt->removed_cb = virConnectDomainEventRegisterAny(rt->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                          VIR_DOMAIN_EVENT_CALLBACK(rt_on_device_removed), rt, NULL);
        if (rt->removed_cb < 0) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "register device-removed events: %s", virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        rt->removal_failed_cb = virConnectDomainEventRegisterAny(
                rt->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
                VIR_DOMAIN_EVENT_CALLBACK(rt_on_device_removal_failed), rt, NULL);
        if (rt->removal_failed_cb < 0)
                log_warning("register device-removal-failed events: %s (a refused detach shows as a timeout)",
                            virGetLastErrorMessage());
        return LAUNCH_EXIT_OK;
}

/* Drops a connection that libvirt reported closed: its callbacks go with it. */
static void rt_drop_conn(Runtime *rt) {
        if (rt->dom)
                virDomainFree(rt->dom);
        rt->dom = NULL;
        if (rt->conn)
                IGNORE_RESULT(virConnectClose(rt->conn));
        rt->conn = NULL;
        rt->close_cb = false;
        rt->lifecycle_cb = rt->job_cb = rt->removed_cb = rt->removal_failed_cb = -1;
}

/* libvirtd went away under a running domain (restarted, upgraded, crashed): QEMU runs on without it
 * and a new libvirtd takes it over, so try to connect again every second for reconnect_s seconds.
 * Back: the domain is looked up by name and supervised as before (its state, if it changed meanwhile,
 * decides the phase). Not back in time, or back without the domain: Failed. */
static int on_reconnect(EventSource *s, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        if (rt->done) {
                rt->reconnect_timer = NULL;
                return -ECANCELED;
        }
        rt_drop_conn(rt); /* the dead one; a no-op after the first try */
        uint64_t waited_ms = (now_usec() - rt->lost_at_us) / 1000;
        virConnectPtr c = virConnectOpen(rt->o->uri);
        if (!c) {
                if (waited_ms < (uint64_t) rt->o->reconnect_s * 1000) {
                        log_debug("reconnect to libvirt at %s: %s", rt->o->uri, virGetLastErrorMessage());
                        return 0;
                }
                rt->reconnect_timer = NULL;
                char msg[512];
                snprintf(msg, sizeof msg, "libvirt connection lost and libvirtd not back within %u s (%s); domain "
                         "state unknown", rt->o->reconnect_s, virGetLastErrorMessage());
                rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_CONN_LOST, msg);
                return -ECANCELED;
        }
        rt->reconnect_timer = NULL;
        rt->conn = c;
        rt->dom = virDomainLookupByName(c, rt->st.domain);
        int state = VIR_DOMAIN_NOSTATE, reason = 0;
        if (!rt->dom || virDomainGetState(rt->dom, &state, &reason, 0) < 0) {
                char msg[512];
                snprintf(msg, sizeof msg, "libvirtd came back after %" PRIu64 " ms without domain '%s' (%s)", waited_ms,
                         rt->st.domain, virGetLastErrorMessage());
                rt->conn_lost = false; /* the domain is gone for good: its files go too */
                rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_VM_FAILED, msg);
                return -ECANCELED;
        }
        int r = rt_register_events(rt);
        if (r != LAUNCH_EXIT_OK) {
                rt_finish(rt, LAUNCH_PHASE_FAILED, r, rt->st.reason);
                return -ECANCELED;
        }
        rt->conn_lost = false;
        rt->st.reconnects++;
        if (state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED) {
                char msg[256];
                snprintf(msg, sizeof msg, "domain %s while libvirtd was away (reason %d)",
                         state == VIR_DOMAIN_CRASHED ? "crashed" : "stopped", reason);
                bool ok = state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN;
                rt_finish(rt, ok ? LAUNCH_PHASE_SUCCEEDED : LAUNCH_PHASE_FAILED,
                          ok ? LAUNCH_EXIT_OK : LAUNCH_EXIT_VM_FAILED, msg);
                return -ECANCELED;
        }
        log_info("reconnected to libvirt after %" PRIu64 " ms: domain '%s' still running", waited_ms, rt->st.domain);
        rt_set_phase(rt, rt->st.phase, "reconnected to libvirt after %" PRIu64 " ms (libvirtd restarted); domain "
                     "still running", waited_ms);
        if (rt->shutdown_pending[0]) {
                char why[sizeof rt->shutdown_pending];
                snprintf(why, sizeof why, "%s", rt->shutdown_pending);
                rt->shutdown_pending[0] = 0;
                rt_request_shutdown(rt, why);
        }
        return -ECANCELED;
}

static void on_close(virConnectPtr conn, int reason, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        if (reason == VIR_CONNECT_CLOSE_REASON_CLIENT || rt->conn_lost)
                return;
        static const char *const names[] = { "error", "end of file", "keepalive timeout", "client" };
        const char *why = reason >= 0 && (size_t) reason < ELEMENTSOF(names) ? names[reason] : "unknown";
        rt->conn_lost = true;
        if (rt->done)
                return;
        /* Only a running domain that is not migrating is taken over again: an incoming migration or
         * an outgoing one does not survive its libvirtd. */
        bool again = rt->o->reconnect_s > 0 && rt->domain_created && !rt->mig &&
                     rt->st.phase == LAUNCH_PHASE_RUNNING;
        if (again) {
                rt->lost_at_us = now_usec();
                if (event_add_timer(rt->loop, 200000, 1000000, on_reconnect, rt, &rt->reconnect_timer) < 0)
                        again = false;
        }
        if (!again) {
                char msg[128];
                snprintf(msg, sizeof msg, "libvirt connection lost (%s); domain state unknown", why);
                rt_finish(rt, LAUNCH_PHASE_FAILED, LAUNCH_EXIT_CONN_LOST, msg);
                return;
        }
        log_warning("libvirt connection lost (%s): reconnecting for up to %u s", why, rt->o->reconnect_s);
        rt_set_phase(rt, rt->st.phase, "libvirt connection lost (%s): reconnecting for up to %u s", why,
                     rt->o->reconnect_s);
}

int rt_start_domain(Runtime *rt, const char *xml) {
        rt->conn = virConnectOpen(rt->o->uri);
        if (!rt->conn) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "cannot connect to libvirt at '%s': %s", rt->o->uri,
                             virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
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
        int r = rt_register_events(rt);
        if (r != LAUNCH_EXIT_OK)
                return r;
        if (rt->st.migratable) {
                unsigned long hv = 0;
                const char *w = virConnectGetVersion(rt->conn, &hv) == 0 ? launch_migration_tcg_warning(rt->o->accel, hv)
                                                                          : NULL;
                if (w)
                        log_warning("%s", w);
        }
        if (rt->o->incoming)
                return rt_incoming_wait(rt);
        rt->dom = virDomainCreateXML(rt->conn, xml,
                                     rt->o->keep_on_exit || rt->o->migratable ? 0 : VIR_DOMAIN_START_AUTODESTROY);
        if (!rt->dom) {
                /* the host devices it passes through, which a refusal is often about */
                char devs[256] = "";
                size_t used = 0;
                for (size_t i = 0; i < rt->n_nics && used < sizeof devs; i++)
                        if (rt->nics[i].kind == NIC_HOSTDEV)
                                used += (size_t) snprintf(devs + used, sizeof devs - used, "%s VF %s for interface %s",
                                                          used ? "," : " (passing through", rt->nics[i].pci,
                                                          rt->nics[i].name);
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "start domain '%s'%s%s: %s", rt->st.domain, devs, used ? ")" : "",
                             virGetLastErrorMessage());
                return LAUNCH_EXIT_LIBVIRT;
        }
        rt->domain_created = true;
        rt_set_phase(rt, LAUNCH_PHASE_RUNNING, "domain started");
        return LAUNCH_EXIT_OK;
}

void rt_disconnect(Runtime *rt) {
        if (!rt->conn)
                return;
        if (!rt->conn_lost) {
                if (rt->lifecycle_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->lifecycle_cb));
                if (rt->job_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->job_cb));
                if (rt->removed_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->removed_cb));
                if (rt->removal_failed_cb >= 0)
                        IGNORE_RESULT(virConnectDomainEventDeregisterAny(rt->conn, rt->removal_failed_cb));
                if (rt->close_cb)
                        IGNORE_RESULT(virConnectUnregisterCloseCallback(rt->conn, on_close));
        }
        if (rt->dom)
                virDomainFree(rt->dom);
        rt->dom = NULL;
        IGNORE_RESULT(virConnectClose(rt->conn));
        rt->conn = NULL;
}
