/* SPDX-License-Identifier: Apache-2.0 */
/* Graceful shutdown: SIGTERM/SIGINT or {"op":"shutdown"} press the ACPI power button (again every few
 * seconds), the domain is destroyed when the grace period ends. */
#include <inttypes.h>
#include <string.h>

#include "common/log.h"
#include "launcher/runtime/runtime.h"

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
void rt_request_shutdown(Runtime *rt, const char *why) {
        if (rt->done)
                return;
        if (rt->conn_lost && rt->reconnect_timer) {
                if (!rt->shutdown_pending[0]) {
                        snprintf(rt->shutdown_pending, sizeof rt->shutdown_pending, "%s", why);
                        log_info("%s: shutdown deferred until libvirt is back", why);
                }
                return;
        }
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

int rt_on_signal(EventSource *s, int signo, void *userdata) {
        (void) s;
        rt_request_shutdown(userdata, strsignal(signo));
        return 0;
}
