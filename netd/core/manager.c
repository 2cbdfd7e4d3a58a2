/* SPDX-License-Identifier: Apache-2.0 */
/* netd's manager: owns IPAM, endpoints, links and NAT and serves the socket verbs. This file: its life
 * (config file, new, free). The verbs: verbs.c; ADD add.c, DEL/GC del.c, CHECK check.c, the read-only verbs
 * status.c; start-up start.c. */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "netd/core/netd-priv.h"

int manager_config_parse(Manager *m, KvErr *e) {
        if (!m->config_path)
                return 0;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(m->config_path, 1024 * 1024, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "config: cannot read '%s'", m->config_path);
        _cleanup_json_ json_t *o = NULL;
        r = json_parse_object(text, len, 1024 * 1024, m->config_path, &o, e);
        if (r < 0)
                return r;
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
                if (!streq(key, "natBackend") && !streq(key, "durable") && !streq(key, "sriovPools") &&
                    !streq(key, "sysfsRoot") && !streq(key, "sriovSimulate") && !streq(key, "nodeName") &&
                    !streq(key, "clusterClaims") && !streq(key, "routeHook") && !streq(key, "nodeAddress") &&
                    !streq(key, "redirectGraceMs") && !streq(key, "policy") && !streq(key, "socketReadGroup") &&
                    !streq(key, "metricsListen") && !streq(key, "multusApi"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config %s: unknown key '%s' (expected natBackend, durable, sriovPools, "
                                         "sysfsRoot, sriovSimulate, nodeName, clusterClaims, routeHook, nodeAddress, "
                                         "redirectGraceMs, policy, socketReadGroup, metricsListen, multusApi)",
                                         m->config_path, key);
        }
        const char *node = NULL, *hook = NULL, *naddr = NULL, *mlisten = NULL;
        if ((r = json_get_string(o, "config", "metricsListen", false, &mlisten, e)) < 0 ||
            (mlisten && (r = netd_metrics_parse_listen(mlisten, e)) < 0))
                return r;
        if (mlisten)
                snprintf(m->metrics_listen, sizeof m->metrics_listen, "%s", mlisten);
        long long grace = m->redirect_grace_ms;
        if ((r = json_get_string(o, "config", "nodeAddress", false, &naddr, e)) < 0 ||
            (r = json_get_int(o, "config", "redirectGraceMs", false, 0, 600000, &grace, e)) < 0)
                return r;
        m->redirect_grace_ms = (uint32_t) grace;
        if (naddr && kv_addr_parse(naddr, &m->node_address) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "config: 'nodeAddress' must be an IPv4 or IPv6 address, got '%.64s'", naddr);
        if ((r = json_get_string(o, "config", "nodeName", false, &node, e)) < 0 ||
            (r = json_get_string(o, "config", "routeHook", false, &hook, e)) < 0)
                return r;
        if (hook) {
                if (hook[0] != '/' || access(hook, X_OK) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'routeHook' must be the absolute path of an executable, got '%.128s'",
                                         hook);
                free(m->route_hook);
                m->route_hook = strdup(hook);
                if (!m->route_hook)
                        return -ENOMEM;
        }
        if (node) {
                if (!*node || strlen(node) >= sizeof m->node_name)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'nodeName' must be 1..%zu characters, got '%.64s'",
                                         sizeof m->node_name - 1, node);
                snprintf(m->node_name, sizeof m->node_name, "%s", node);
        }
        json_t *rg = json_object_get(o, "socketReadGroup");
        if (rg) {
                /* a group name, or a gid */
                long long gid = -1;
                if (json_is_integer(rg) && json_integer_value(rg) >= 0 && json_integer_value(rg) < INT32_MAX)
                        gid = json_integer_value(rg);
                else if (json_is_string(rg) && json_string_length(rg) > 0 && json_string_length(rg) < 64) {
                        struct group *g = getgrnam(json_string_value(rg));
                        if (!g)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                                 "config: 'socketReadGroup': no group '%s' on this node",
                                                 json_string_value(rg));
                        gid = g->gr_gid;
                } else
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'socketReadGroup' must be a group name or a gid");
                if (gid == 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'socketReadGroup' must not be root's group (gid 0)");
                m->socket_read_gid = gid;
        }
        json_t *pol = json_object_get(o, "policy");
        if (pol) {
                NodePolicy np;
                node_policy_init(&np);
                if ((r = node_policy_parse(pol, &np, e)) < 0)
                        return r;
                m->policy = np;
        }
        json_t *api = json_object_get(o, "multusApi");
        if (api && (r = netd_api_config(m, api, e)) < 0)
                return r;
        json_t *claims = json_object_get(o, "clusterClaims");
        if (claims) {
                ClaimStoreConfig cc;
                r = claimstore_config_from_json(claims, &cc, e);
                if (r < 0)
                        return r;
                claimstore_config_done(&m->cs_config);
                m->cs_config = cc;
                m->cluster = true;
                if (!node)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims' needs 'nodeName' (this node's name in the cluster)");
        }
        const char *nb = NULL, *sysfs = NULL;
        json_t *pools = NULL;
        if ((r = json_get_string(o, "config", "natBackend", false, &nb, e)) < 0 ||
            (r = json_get_bool(o, "config", "durable", false, &m->durable, e)) < 0 ||
            (r = json_get_string(o, "config", "sysfsRoot", false, &sysfs, e)) < 0 ||
            (r = json_get_bool(o, "config", "sriovSimulate", false, &m->sriov_simulate, e)) < 0)
                return r;
        if (sysfs) {
                if (sysfs[0] != '/' || strlen(sysfs) >= PATH_MAX / 2)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'sysfsRoot' must be an absolute path, got '%s'", sysfs);
                char *d = strdup(sysfs);
                if (!d)
                        return -ENOMEM;
                free(m->sysfs_root);
                m->sysfs_root = d;
        }
        pools = json_object_get(o, "sriovPools");
        if (pools) {
                free(m->sriov_pools);
                m->sriov_pools = NULL;
                m->n_sriov_pools = 0;
                KvErr pe = {};
                r = sriov_pools_parse(pools, &m->sriov_pools, &m->n_sriov_pools, &pe);
                if (r < 0)
                        return kverr_set(e, pe.code ? pe.code : KV_ERR_INVALID_CONFIG, r, "config %s: %s",
                                         m->config_path, pe.msg);
        }
        if (nb) {
                if (nat_backend_kind_from_string(nb) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'natBackend' must be nftables or ebpf, got '%s'", nb);
                snprintf(m->default_nat_backend, sizeof m->default_nat_backend, "%s", nb);
        }
        return 0;
}

/* The handoff's view of the attachments (netd/migration/handoff.h). */
static void handoff_foreach_endpoint(void *userdata, void (*fn)(Endpoint *ep, void *ctx), void *ctx) {
        Manager *m = userdata;
        EP_FOREACH(m, ep) {
                fn(ep, ctx);
        }
}

static int handoff_persist_endpoint(void *userdata, const Endpoint *ep, KvErr *e) {
        return manager_persist(userdata, ep, e);
}

int manager_new(const NetdOptions *opts, EventLoop *loop, Manager **ret, KvErr *e) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->socket_path = strdup(opts->socket_path);
        m->state_dir = strdup(opts->state_dir);
        m->config_path = opts->config_path ? strdup(opts->config_path) : NULL;
        if (!m->socket_path || !m->state_dir || (opts->config_path && !m->config_path))
                return -ENOMEM;
        m->durable = opts->durable;
        node_policy_init(&m->policy);
        m->socket_read_gid = -1;
        m->loop = loop;
        strcpy(m->default_nat_backend, "nftables");
        m->redirect_grace_ms = 5000;
        m->started_usec = now_usec();
        m->sysfs_root = strdup(SRIOV_DEFAULT_SYSFS);
        if (!m->sysfs_root)
                return -ENOMEM;
        int r = manager_config_parse(m, e);
        if (r < 0)
                return r;
        if (!opts->durable)
                m->durable = false;
        r = ep_grow(m);
        if (r < 0)
                return r;
        r = mkdir_p(m->state_dir, 0700);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot create state dir '%s'", m->state_dir);
        r = ipam_new(m->state_dir, m->durable, &m->ipam);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot set up IPAM");
        char jpath[PATH_MAX];
        if (snprintf(jpath, sizeof jpath, "%s/endpoints.journal", m->state_dir) >= (int) sizeof jpath)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENAMETOOLONG, "netd: state dir path too long");
        r = journal_open(jpath, m->durable, &m->ep_journal, e);
        if (r < 0)
                return r;
        if (m->cluster) {
                m->cs_config.durable = m->durable;
                r = claimstore_new(&m->cs_config, m->node_name, &m->cs, e);
                if (r < 0)
                        return r;
                ipam_set_addr_filter(m->ipam, cluster_taken, m);
                /* the store unreachable now (an API server down while the node starts) must not keep the node's
                 * network down: the registration is tried again before the next operation on the store */
                if (m->node_address.family && claimstore_set_node_address(m->cs, &m->node_address) < 0)
                        log_warning("clusterClaims: this node's address is not registered yet (the store cannot be "
                                    "reached): tried again at the next claim operation");
        }
        HandoffConfig hc = { .loop = loop, .state_dir = m->state_dir, .cs = m->cs, .ipam = m->ipam,
                             .node_name = m->node_name, .node_address = m->node_address,
                             .redirect_grace_ms = m->redirect_grace_ms, .route_hook = m->route_hook };
        HandoffHost hh = { .userdata = m, .foreach_endpoint = handoff_foreach_endpoint,
                           .persist = handoff_persist_endpoint, .is_masq_vm = manager_ep_is_masq_vm };
        r = handoff_new(&hc, &hh, &m->handoff);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot set up the migration handoff");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->metrics = netd_metrics_free(m->metrics); /* first: its scrapes read the rest */
        netd_api_free(m);
        for (size_t i = 0; i < m->n_buckets; i++) {
                EpNode *n = m->ep_buckets[i];
                while (n) {
                        EpNode *next = n->next;
                        dhcp_stop(n->ep);
                        handoff_forget(m->handoff, n->ep);
                        endpoint_free(n->ep);
                        free(n);
                        n = next;
                }
        }
        free(m->ep_buckets);
        sriov_free(m->sriov);
        sriov_nl_sink_free(m->sriov_sink);
        free(m->sriov_pools);
        free(m->sysfs_root);
        reaper_free(m->reaper);
        ipam_free(m->ipam);
        journal_free(m->ep_journal);
        claimstore_free(m->cs);
        claimstore_config_done(&m->cs_config);
        m->handoff = handoff_free(m->handoff);
        free(m->route_hook);
        nat_backend_free(m->nat_nft);
        portfilter_free(m->portfilter);
        free(m->socket_path);
        free(m->state_dir);
        free(m->config_path);
        free(m);
        return NULL;
}

