/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: CHECK, an attachment's kernel side against its record. */
#include "common/json-util.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"
#include "netd/link/vlan.h"

int endpoint_kernel_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        int r = ep_binding(ep)->check(m, ep, nsfd, e);
        if (r < 0 || !ep_needs_nat(ep))
                return r;
        NatBackend *nb;
        r = nat_get(m, ep->nat_backend, &nb, e);
        if (r < 0)
                return r;
        NatEpBuf b;
        nat_endpoint_from(ep, &b);
        return nat_check(nb, &b.ne, e);
}

int do_check(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachLookup l;
        int r = attach_request_lookup(m, args, "check", &l, e);
        if (r < 0)
                return r;
        Endpoint *ep = l.ep;
        if (!ep)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "check: unknown attachment '%s'", l.id);
        _cleanup_close_ int nsfd = -1;
        const char *path = l.req.netns[0] ? l.req.netns : ep->netns;
        r = netns_open(path, &nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "check: netns '%s' is gone", path);
        NetnsId id;
        if (ep->netns_id.ino && (netns_id(nsfd, &id) < 0 || !netns_id_equal(&id, &ep->netns_id)))
                return kverr_set(e, KV_ERR_INVALID_ENV, -ESTALE,
                                 "check: netns '%s' is not the namespace attachment '%s' was made in", path, ep->id);
        r = endpoint_kernel_check(m, ep, nsfd, e);
        if (r < 0)
                return r;
        /* The cached prevResult must still carry our addresses. */
        json_t *prev = json_object_get(args, "prevResult");
        if (json_is_object(prev) && !ep->chained) {
                char buf[KV_ADDR_STRLEN];
                for (size_t i = 0; i < ep->n_addrs; i++) {
                        bool found = false;
                        size_t k;
                        json_t *ip;
                        kv_prefix_fmt(&ep->addrs[i], buf);
                        json_array_foreach(json_object_get(prev, "ips"), k, ip) {
                                const char *a = json_string_value(json_object_get(ip, "address"));
                                if (a && streq(a, buf))
                                        found = true;
                        }
                        if (!found)
                                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL,
                                                 "check: prevResult does not list the attachment's address %s", buf);
                }
        }
        *ret = json_object();
        return 0;
}

