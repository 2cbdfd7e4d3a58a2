/* SPDX-License-Identifier: Apache-2.0 */
/* Pausing the VM (virtctl pause / unpause, through the node agent): the domain's vCPUs stop, its memory, devices
 * and network attachments stay; the status file says "paused" so that the node marks the VMI (condition Paused). */
#include "common/log.h"
#include "launcher/runtime/runtime.h"

int rt_pause(Runtime *rt, bool pause, KvErr *e) {
        const char *op = pause ? "pause" : "unpause";
        int r = rt_domain_op_check(rt, op, e);
        if (r < 0)
                return r;
        if (rt->st.paused == pause)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EALREADY, "%s: the VM is %s", op,
                                 pause ? "already paused" : "not paused");
        if ((pause ? virDomainSuspend(rt->dom) : virDomainResume(rt->dom)) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -EIO, "%s: libvirt: %s", op, virGetLastErrorMessage());
        rt->st.paused = pause;
        log_info("domain %s by request", pause ? "paused" : "resumed");
        rt_write_status(rt);
        return 0;
}

void rt_pause_event(Runtime *rt, int event, int detail) {
        bool paused = rt->st.paused;
        if (event == VIR_DOMAIN_EVENT_SUSPENDED && detail == VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
                paused = true;
        else if ((event == VIR_DOMAIN_EVENT_RESUMED && detail == VIR_DOMAIN_EVENT_RESUMED_UNPAUSED) ||
                 event == VIR_DOMAIN_EVENT_STOPPED)
                paused = false;
        if (paused == rt->st.paused)
                return;
        rt->st.paused = paused;
        log_info("domain %s (libvirt event)", paused ? "paused" : "resumed");
        rt_write_status(rt);
}
