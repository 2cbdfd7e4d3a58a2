/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: DEL and GC, and the removal of an attachment they share. */
#include "common/json-util.h"
#include "common/log.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

/* Removes the kernel side of an endpoint; tolerant of anything already gone. Deferred: NAT entries go
 * now, the links are taken out of service now and deleted by the reaper in the next batch. */
int teardown_kernel(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        return ep_binding(ep)->detach(m, ep, deferred, e);
}

static int remove_endpoint(Manager *m, Endpoint *ep, KvErr *e) {
        if (count_key_users(m, ep, ep->network, ep->key) == 0)
                handoff_on_remove(m->handoff, ep);
        dhcp_stop(ep);
        handoff_forget(m->handoff, ep);
        int r = teardown_kernel(m, ep, true, e);
        if (r < 0)
                return r;
        ep_unlink(m, ep);
        release_claim_if_unused(m, ep);
        r = endpoint_remove(m->ep_journal, ep, m->durable);
        endpoint_free(ep);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot remove endpoint state");
        return 0;
}

int do_del(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachLookup l;
        int r = attach_request_lookup(m, args, "del", &l, e);
        if (r < 0)
                return r;
        if (l.ep) {
                r = remove_endpoint(m, l.ep, e);
                if (r < 0)
                        return r;
                m->n_dels++;
        }
        *ret = json_object();
        return 0;
}

int do_gc(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        const char *network = NULL;
        json_t *valid = NULL;
        int r;
        if ((r = json_get_string(args, "gc", "network", true, &network, e)) < 0 ||
            (r = json_get_array(args, "gc", "validAttachments", false, &valid, e)) < 0)
                return r;
        size_t i;
        json_t *v;
        json_array_foreach(valid, i, v) {
                if (!json_is_string(json_object_get(v, "containerID")) || !json_is_string(json_object_get(v, "ifname")))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "gc: validAttachments[%zu] needs string 'containerID' and 'ifname'", i);
        }
        unsigned removed = 0, failed = 0;
        EP_FOREACH(m, ep) {
                if (!streq(ep->network, network))
                        continue;
                bool keep = false;
                json_array_foreach(valid, i, v) {
                        if (streq(json_string_value(json_object_get(v, "containerID")), ep->container_id) &&
                            streq(json_string_value(json_object_get(v, "ifname")), ep->ifname)) {
                                keep = true;
                                break;
                        }
                }
                if (keep)
                        continue;
                KvErr ee = {};
                if (remove_endpoint(m, ep, &ee) < 0) {
                        log_warning("gc: removing '%s' failed: %s", ep->id, ee.msg);
                        failed++;
                } else
                        removed++;
        }
        *ret = json_pack("{s:i,s:i}", "removed", removed, "failed", failed);
        return 0;
}

