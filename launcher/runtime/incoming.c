/* SPDX-License-Identifier: Apache-2.0 */
/* Live migration, target side (--incoming): wait for the domain to arrive, tell netd when it resumes
 * here, give up after the timeout. */
#include <inttypes.h>

#include "common/log.h"
#include "common/migproto.h"
#include "launcher/runtime/runtime.h"

/* --incoming: the migration did not arrive. Anything half-arrived is destroyed. */
void rt_incoming_failed(Runtime *rt, const char *reason) {
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
        json_t *res = rt_netd_call(rt, MIGPROTO_ACTIVATE, mig_activate_msg_to_json(&msg));
        /* netd's figures of the switch (common/migproto.h, MigActivateReply), for the node to report */
        json_t *early = json_object_get(res, "earlyPackets"), *sw = json_object_get(res, "switchMicros");
        if (json_is_integer(early) && json_integer_value(early) >= 0) {
                rt->st.mig.early_packets = json_integer_value(early);
                rt->st.mig.switch_us = json_is_integer(sw) ? json_integer_value(sw) : -1;
        }
        json_decref(res);
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

int rt_incoming_wait(Runtime *rt) {
        uint32_t t = rt->o->incoming_timeout_s ? rt->o->incoming_timeout_s : 300;
        rt->st.mig = (LaunchMigrationStatus){ .state = LAUNCH_MIG_PENDING, .incoming = true,
                                              .started_at_ms = realtime_ms(), .early_packets = -1, .switch_us = -1 };
        if (event_add_timer(rt->loop, (uint64_t) t * 1000000ULL, 0, on_incoming_timeout, rt, &rt->incoming_timer) < 0) {
                rt_set_phase(rt, LAUNCH_PHASE_FAILED, "cannot arm the incoming timeout");
                return LAUNCH_EXIT_INTERNAL;
        }
        rt_set_phase(rt, LAUNCH_PHASE_WAITING_FOR_MIGRATION,
                     "waiting for domain '%s' to arrive by live migration (timeout %u s)", rt->st.domain, t);
        return LAUNCH_EXIT_OK;
}

void rt_incoming_event(Runtime *rt, virDomainPtr dom, int event, int detail) {
        log_info("incoming domain '%s': lifecycle event %d detail %d", rt->st.domain, event, detail);
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
}
