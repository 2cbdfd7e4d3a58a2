/* SPDX-License-Identifier: Apache-2.0 */
/* One delegate through node/'s CNI runtime (libcni's semantics: its own result cache under cniDir,
 * prevResult on DEL/CHECK, capability args only to plugins that declare them). */
#include "common/json-util.h"
#include "multus-compat/plugin/plugin.h"

/* A NodeErr as the CNI error the meta plugin returns, naming the network and its interface. */
static int node_error(KvErr *e, int r, const McCachedDelegate *d, const NodeErr *ne) {
        int code = ne->kind == NODE_ERR_PLUGIN && ne->code > 0 && ne->code < 1000 ? (int) ne->code
                 : ne->kind == NODE_ERR_EXEC || ne->kind == NODE_ERR_GATE         ? KV_ERR_IO
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
        NodeCniArg *args;
        char *mac, *ips;
        char *seed; /* the auxiliary chain's prevResult */
} Att;

static void att_done(Att *t) {
        free(t->caps);
        free(t->args);
        free(t->mac);
        free(t->ips);
        free(t->seed);
}

/* A requested network's mac and ips also go into its delegate's CNI_ARGS as MAC= and IP= (Multus's delegateAdd
 * does the same: plugins that take them from CNI_ARGS but declare no capability get them too). */
static int att_args(McPlugin *p, const McCache *c, const McCachedDelegate *d, Att *t) {
        if (c->n_delegates == 0 || d == &c->delegates[0]) /* the cluster network: the runtime's args only */
                return 0;
        for (size_t i = 0; i < d->n_caps; i++) {
                _cleanup_json_ json_t *v = json_loads(d->caps[i].value, JSON_DECODE_ANY, NULL);
                if (streq(d->caps[i].key, "mac") && json_is_string(v)) {
                        if (!(t->mac = strdup(json_string_value(v))))
                                return -ENOMEM;
                } else if (streq(d->caps[i].key, "ips") && json_is_array(v) && json_array_size(v) > 0) {
                        size_t k;
                        json_t *ip;
                        json_array_foreach(v, k, ip) {
                                char *n = NULL;
                                if (!json_is_string(ip))
                                        continue;
                                if (asprintf(&n, "%s%s%s", t->ips ? t->ips : "", t->ips ? "," : "", json_string_value(ip)) < 0)
                                        return -ENOMEM;
                                free(t->ips);
                                t->ips = n;
                        }
                }
        }
        if (!t->mac && !t->ips)
                return 0;
        if (!(t->args = calloc(p->n_args + 2, sizeof *t->args)))
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < p->n_args; i++) /* the runtime's own MAC/IP were for the cluster network */
                if (!streq(p->args[i].key, "MAC") && !streq(p->args[i].key, "IP"))
                        t->args[n++] = p->args[i];
        if (t->mac)
                t->args[n++] = (NodeCniArg) { "MAC", t->mac };
        if (t->ips)
                t->args[n++] = (NodeCniArg) { "IP", t->ips };
        t->a.args = t->args;
        t->a.n_args = n;
        return 0;
}

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
        if (d->aux) {
                int r = mc_aux_seed_result(p->conf->cni_version, &t->seed);
                if (r < 0)
                        return r;
                t->a.prev_result = t->seed;
        }
        return att_args(p, c, d, t);
}

typedef enum Op { OP_ADD, OP_DEL, OP_CHECK } Op;

static int run_op(McPlugin *p, const McCache *c, const McCachedDelegate *d, Op op, NodeCniResult **ret, KvErr *e) {
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        NodeErr ne = {};
        Att t = {};
        int r = mc_delegate_network(d, &net, e);
        if (r < 0)
                return r;
        if ((r = att_init(p, c, d, &t)) < 0) {
                att_done(&t);
                return r;
        }
        r = op == OP_ADD ? node_cni_add(p->rt, net, &t.a, NODE_CNI_ADD_ROLLBACK, ret, &ne)
          : op == OP_DEL ? node_cni_del(p->rt, net, &t.a, &ne)
                         : node_cni_check(p->rt, net, &t.a, &ne);
        if (r < 0)
                node_error(e, r, d, &ne);
        node_err_done(&ne);
        att_done(&t);
        return r;
}

/* A claim whose addresses cannot be recorded fails the ADD: this delegate is rolled back here, the ones
 * before it by the caller. */
int mc_delegate_add(McPlugin *p, const McCache *c, const McCachedDelegate *d, NodeCniResult **ret, KvErr *e) {
        int r = run_op(p, c, d, OP_ADD, ret, e);
        if (r < 0 || (r = mc_ipamclaim_record(p, c, d, *ret, e)) >= 0)
                return r;
        KvErr ignored = {};
        IGNORE_RESULT(mc_delegate_del(p, c, d, &ignored));
        *ret = node_cni_result_free(*ret);
        return r;
}

int mc_delegate_del(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) {
        return run_op(p, c, d, OP_DEL, NULL, e);
}

int mc_delegate_check(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) {
        if (d->aux) /* Multus's CHECK runs its config's delegates, never the auxiliary chain (ADD adds it) */
                return 0;
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
