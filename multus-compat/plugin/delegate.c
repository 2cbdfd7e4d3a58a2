/* SPDX-License-Identifier: Apache-2.0 */
/* One delegate through node/'s CNI runtime (libcni's semantics: its own result cache under cniDir,
 * prevResult on DEL/CHECK, capability args only to plugins that declare them). */
#include "multus-compat/plugin/plugin.h"

/* A NodeErr as the CNI error the meta plugin returns, naming the network and its interface. */
static int node_error(KvErr *e, int r, const McCachedDelegate *d, const NodeErr *ne) {
        int code = ne->kind == NODE_ERR_PLUGIN && ne->code > 0 && ne->code < 1000 ? (int) ne->code
                 : ne->kind == NODE_ERR_EXEC                                      ? KV_ERR_IO
                                                                                  : KV_ERR_INVALID_CONFIG;
        kverr_set(e, code, r, "network '%s' (%s): %s", d->name, d->ifname, ne->msg[0] ? ne->msg : strerror(-r));
        if (e->code == code && ne->details[0] && !e->details[0])
                snprintf(e->details, sizeof e->details, "%s", ne->details);
        return r;
}

int mc_delegate_network(const McCachedDelegate *d, NodeCniNetwork **ret, KvErr *e) {
        NodeErr ne = {};
        int r = node_cni_network_parse(d->conflist, strlen(d->conflist), d->name, ret, &ne);
        if (r < 0)
                node_error(e, r, d, &ne);
        node_err_done(&ne);
        return r;
}

typedef struct Att {
        NodeCniAttachment a;
        NodePodRef pod;
        NodeCniArg *caps;
} Att;

static int att_init(McPlugin *p, const McCache *c, const McCachedDelegate *d, Att *t) {
        t->caps = d->n_caps ? calloc(d->n_caps, sizeof *t->caps) : NULL;
        if (d->n_caps && !t->caps)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_caps; i++)
                t->caps[i] = (NodeCniArg) { d->caps[i].key, d->caps[i].value };
        t->pod = (NodePodRef) { c->pod_namespace, c->pod_name, c->pod_uid ? c->pod_uid : "" };
        t->a = (NodeCniAttachment) {
                .container_id = c->container_id,
                .netns = p->netns && *p->netns ? p->netns : c->netns,
                .ifname = d->ifname,
                .pod = c->pod_name ? &t->pod : NULL,
                .args = p->args,
                .n_args = p->n_args,
                .caps = t->caps,
                .n_caps = d->n_caps,
        };
        return 0;
}

typedef enum Op { OP_ADD, OP_DEL, OP_CHECK } Op;

static int run_op(McPlugin *p, const McCache *c, const McCachedDelegate *d, Op op, NodeCniResult **ret, KvErr *e) {
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        NodeErr ne = {};
        Att t = {};
        int r = mc_delegate_network(d, &net, e);
        if (r < 0)
                return r;
        if ((r = att_init(p, c, d, &t)) < 0)
                return r;
        r = op == OP_ADD ? node_cni_add(p->rt, net, &t.a, NODE_CNI_ADD_ROLLBACK, ret, &ne)
          : op == OP_DEL ? node_cni_del(p->rt, net, &t.a, &ne)
                         : node_cni_check(p->rt, net, &t.a, &ne);
        if (r < 0)
                node_error(e, r, d, &ne);
        node_err_done(&ne);
        free(t.caps);
        return r;
}

int mc_delegate_add(McPlugin *p, const McCache *c, const McCachedDelegate *d, NodeCniResult **ret, KvErr *e) {
        return run_op(p, c, d, OP_ADD, ret, e);
}

int mc_delegate_del(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) {
        return run_op(p, c, d, OP_DEL, NULL, e);
}

int mc_delegate_check(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) {
        return run_op(p, c, d, OP_CHECK, NULL, e);
}

int mc_delegates_del(McPlugin *p, const McCache *c, size_t upto, KvErr *e) {
        int first = 0;
        for (size_t i = upto; i > 0; i--) {
                int r = mc_delegate_del(p, c, &c->delegates[i - 1], e);
                if (r < 0 && first == 0)
                        first = r;
        }
        return first;
}
