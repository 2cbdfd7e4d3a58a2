/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster-wide claim authority (claimstore.h): the rules every backend shares and the dispatch to the
 * backend's ops (claimstore-priv.h; "dir" claimstore-dir.c, "kube" claimstore-kube.c). */
#include <ctype.h>

#include "common/event.h"
#include "common/json-util.h"
#include "common/log.h"
#include "netd/state/claimstore-priv.h"

static const char *const claimstore_backends[_CLAIMSTORE_BACKEND_MAX] = {
        [CLAIMSTORE_DIR] = "dir",
        [CLAIMSTORE_KUBE] = "kube",
};

static const struct {
        const ClaimStoreOps *ops;
        int (*init)(ClaimStore *cs, const ClaimStoreConfig *cfg, KvErr *e);
} backend_table[_CLAIMSTORE_BACKEND_MAX] = {
        [CLAIMSTORE_DIR] = { &claimstore_dir_ops, claimstore_dir_init },
        [CLAIMSTORE_KUBE] = { &claimstore_kube_ops, claimstore_kube_init },
};

const char *claimstore_backend_to_string(ClaimStoreBackend b) {
        return b >= 0 && b < _CLAIMSTORE_BACKEND_MAX ? claimstore_backends[b] : NULL;
}

ClaimStoreBackend claimstore_backend_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(claimstore_backends); i++)
                if (streq(claimstore_backends[i], s))
                        return (ClaimStoreBackend) i;
        return _CLAIMSTORE_BACKEND_INVALID;
}

bool claimstore_node_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= CS_NODE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return !streq(s, ".") && !streq(s, "..");
}


void claimstore_config_done(ClaimStoreConfig *c) {
        free(c->dir);
        free(c->kubeconfig);
        *c = (ClaimStoreConfig) {};
}

int claimstore_config_from_json(json_t *v, ClaimStoreConfig *ret, KvErr *e) {
        ClaimStoreConfig c = { .backend = CLAIMSTORE_DIR, .durable = true };
        const char *dir = NULL, *kc = NULL, *backend = NULL;
        long long timeout = 0;
        int r;
        if (json_is_string(v))
                dir = json_string_value(v);
        else if (json_is_object(v)) {
                const char *k;
                json_t *x;
                json_object_foreach(v, k, x)
                        if (!streq(k, "backend") && !streq(k, "dir") && !streq(k, "kubeconfig") && !streq(k, "timeoutMs"))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "config: unknown key 'clusterClaims.%s' (expected backend, dir, "
                                                 "kubeconfig, timeoutMs)",
                                                 k);
                if ((r = json_get_string(v, "config: clusterClaims", "backend", true, &backend, e)) < 0 ||
                    (r = json_get_string(v, "config: clusterClaims", "dir", false, &dir, e)) < 0 ||
                    (r = json_get_string(v, "config: clusterClaims", "kubeconfig", false, &kc, e)) < 0 ||
                    (r = json_get_int(v, "config: clusterClaims", "timeoutMs", false, 100, 600000, &timeout, e)) < 0)
                        return r;
                c.backend = claimstore_backend_from_string(backend);
                if (c.backend < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims.backend' must be dir or kube, got '%.64s'", backend);
        } else
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "config: 'clusterClaims' must be a directory path or an object "
                                 "{\"backend\": \"dir\"|\"kube\", ...}, got %s",
                                 json_type_name(v));
        if (c.backend == CLAIMSTORE_DIR) {
                if (kc)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims.kubeconfig' is for the kube backend, not dir");
                if (!dir || dir[0] != '/')
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims%s' must be an absolute directory path, got '%.64s'",
                                         json_is_object(v) ? ".dir" : "", dir ? dir : "");
        } else {
                if (dir)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims.dir' is for the dir backend, not kube");
                if (kc && kc[0] != '/')
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims.kubeconfig' must be an absolute path, got '%.128s'", kc);
        }
        c.timeout_ms = (unsigned) timeout;
        if ((dir && !(c.dir = strdup(dir))) || (kc && !(c.kubeconfig = strdup(kc)))) {
                claimstore_config_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int claimstore_new(const ClaimStoreConfig *cfg, const char *node, ClaimStore **ret, KvErr *e) {
        if (cfg->backend < 0 || cfg->backend >= _CLAIMSTORE_BACKEND_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "clusterClaims: unknown backend %d", (int) cfg->backend);
        if (!node || !claimstore_node_name_ok(node))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "nodeName: '%.64s' must be 1..%d characters of [A-Za-z0-9_.-] (needed with clusterClaims)",
                                 node ? node : "", CS_NODE_MAX - 1);
        ClaimStore *cs = calloc(1, sizeof *cs);
        if (!cs)
                return -ENOMEM;
        cs->backend = cfg->backend;
        cs->ops = backend_table[cfg->backend].ops;
        snprintf(cs->node, sizeof cs->node, "%s", node);
        int r = backend_table[cfg->backend].init(cs, cfg, e);
        if (r < 0) {
                claimstore_free(cs);
                return r;
        }
        *ret = cs;
        return 0;
}

int claimstore_open(const char *dir, const char *node, bool durable, ClaimStore **ret, KvErr *e) {
        ClaimStoreConfig cfg = { .backend = CLAIMSTORE_DIR, .dir = (char *) dir, .durable = durable };
        return claimstore_new(&cfg, node, ret, e);
}

ClaimStore *claimstore_free(ClaimStore *cs) {
        if (!cs)
                return NULL;
        if (cs->ops)
                cs->ops->done(cs);
        free(cs);
        return NULL;
}

const char *claimstore_node(const ClaimStore *cs) {
        return cs->node;
}

ClaimStoreBackend claimstore_backend(const ClaimStore *cs) {
        return cs->backend;
}

/* ---- records ---- */

json_t *claimstore_record_to_json(const CsRecord *r) {
        char s[KV_ADDR_STRLEN], m[KV_MAC_STRLEN];
        json_t *ips = json_array();
        for (size_t i = 0; ips && i < r->n_addrs; i++)
                json_array_append_new(ips, json_string(kv_prefix_fmt(&r->addrs[i], s)));
        return json_pack("{s:i,s:s,s:s,s:o,s:s,s:s,s:b,s:s,s:b,s:I}", "version", 1, "network", r->network, "key",
                         r->key, "ips", ips ? ips : json_array(), "mac", kv_mac_fmt(r->mac, m), "holder", r->holder,
                         "attached", r->attached, "target", r->target, "targetReady", r->target_ready, "updated",
                         (json_int_t) r->updated_usec);
}

int claimstore_record_from_json(json_t *o, CsRecord *ret) {
        CsRecord r = {};
        KvErr e = {};
        const char *network, *key, *mac, *holder, *target;
        json_t *ips;
        bool attached, ready = false;
        long long updated = 0;
        if (json_get_string(o, "record", "network", true, &network, &e) < 0 ||
            json_get_string(o, "record", "key", true, &key, &e) < 0 ||
            json_get_string(o, "record", "mac", true, &mac, &e) < 0 ||
            json_get_string(o, "record", "holder", true, &holder, &e) < 0 ||
            json_get_string(o, "record", "target", true, &target, &e) < 0 ||
            json_get_bool(o, "record", "attached", true, &attached, &e) < 0 ||
            json_get_bool(o, "record", "targetReady", false, &ready, &e) < 0 ||
            json_get_array(o, "record", "ips", true, &ips, &e) < 0 ||
            json_get_int(o, "record", "updated", false, 0, INT64_MAX, &updated, &e) < 0)
                return -EBADMSG;
        if (strlen(network) >= sizeof r.network || strlen(key) >= sizeof r.key || strlen(holder) >= sizeof r.holder ||
            strlen(target) >= sizeof r.target || json_array_size(ips) > CS_MAX_ADDRS)
                return -EBADMSG;
        strcpy(r.network, network);
        strcpy(r.key, key);
        strcpy(r.holder, holder);
        strcpy(r.target, target);
        r.target_ready = r.target[0] && ready;
        r.attached = attached;
        r.updated_usec = (uint64_t) updated;
        if (kv_mac_parse(mac, r.mac) < 0)
                return -EBADMSG;
        size_t i;
        json_t *v;
        json_array_foreach(ips, i, v) {
                if (!json_is_string(v) || kv_prefix_parse(json_string_value(v), &r.addrs[i]) < 0)
                        return -EBADMSG;
                r.n_addrs++;
        }
        *ret = r;
        return 0;
}

/* ---- operations ---- */

/* This node's address, when its registration failed before: once more now, before an operation that goes to the
 * store anyway (no request of its own while the store is unreachable, no timer). */
static void register_pending(ClaimStore *cs) {
        if (!cs->addr_pending || cs->ops->set_node_address(cs, &cs->pending_addr) < 0)
                return;
        cs->addr_pending = false;
        char a[KV_ADDR_STRLEN];
        log_info("cluster claims: this node's address %s registered", kv_addr_fmt(&cs->pending_addr, a));
}

/* Every read-decide-write of a record goes through here: the pending registration first. */
static int store_update(ClaimStore *cs, const char *network, const char *key, cs_decide_fn decide, KvErr *e) {
        register_pending(cs);
        return cs->ops->update(cs, network, key, decide, e);
}

bool cs_has_addr(const KvPrefix *list, size_t n, const KvAddr *a) {
        for (size_t i = 0; i < n; i++)
                if (kv_addr_equal(&list[i].addr, a))
                        return true;
        return false;
}

void cs_mac_hex(const uint8_t mac[6], char buf[static 13]) {
        snprintf(buf, 13, "%02x%02x%02x%02x%02x%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int claimstore_get(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) {
        register_pending(cs);
        return cs->ops->get(cs, network, key, ret);
}

bool claimstore_addr_taken(ClaimStore *cs, const char *network, const KvAddr *a, const char *key) {
        return cs->ops->addr_taken(cs, network, a, key);
}

int cs_take_check(ClaimStore *cs, const CsRecord *old, bool found, const char *network, const char *key, KvErr *e) {
        if (found && old->holder[0] && !streq(old->holder, cs->node) && (old->attached || old->target[0]))
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY,
                                 "cluster claims: '%s' in network '%s' is held by node '%s'%s%s", key, network,
                                 old->holder, old->target[0] ? " and migrating to node " : "", old->target);
        if (found && old->target[0] && !streq(old->target, cs->node) && !old->holder[0])
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY,
                                 "cluster claims: '%s' in network '%s' is being migrated to node '%s'", key, network,
                                 old->target);
        return 0;
}

void cs_take_record(ClaimStore *cs, const CsRecord *old, bool found, const char *network, const char *key,
                    const KvPrefix *addrs, size_t n_addrs, const uint8_t mac[6], CsRecord *ret) {
        CsRecord rec = { .n_addrs = n_addrs, .attached = true };
        snprintf(rec.network, sizeof rec.network, "%s", network);
        snprintf(rec.key, sizeof rec.key, "%s", key);
        if (n_addrs) /* addrs may be NULL then */
                memcpy(rec.addrs, addrs, sizeof addrs[0] * n_addrs);
        memcpy(rec.mac, mac, 6);
        snprintf(rec.holder, sizeof rec.holder, "%s", cs->node);
        if (found && streq(old->holder, cs->node)) {
                snprintf(rec.target, sizeof rec.target, "%s", old->target);
                rec.target_ready = old->target_ready;
        }
        *ret = rec;
}

int claimstore_take(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                    const uint8_t mac[6], KvErr *e) {
        if (strlen(network) >= sizeof(((CsRecord *) NULL)->network) || strlen(key) >= sizeof(((CsRecord *) NULL)->key))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cluster claims: network or key too long");
        if (n_addrs > CS_MAX_ADDRS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cluster claims: %zu addresses, at most %d", n_addrs,
                                 CS_MAX_ADDRS);
        register_pending(cs);
        return cs->ops->take(cs, network, key, addrs, n_addrs, mac, e);
}

static int decide_begin(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        if (!found)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "cluster claims: no claim '%s' in network '%s'", key, network);
        if (streq(rec->holder, cs->node))
                return kverr_set(e, KV_ERR_INTERNAL, -EALREADY, "cluster claims: node '%s' already holds '%s'", cs->node,
                                 key);
        if (rec->target[0] && !streq(rec->target, cs->node))
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY,
                                 "cluster claims: '%s' is already being migrated from node '%s' to node '%s'", key,
                                 rec->holder, rec->target);
        if (!streq(rec->target, cs->node))
                rec->target_ready = false;
        snprintf(rec->target, sizeof rec->target, "%s", cs->node);
        return CS_WRITE;
}

int claimstore_begin_migration(ClaimStore *cs, const char *network, const char *key, KvErr *e) {
        int r = store_update(cs, network, key, decide_begin, e);
        return r < 0 ? r : 0;
}

static int decide_ready(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e,
                        bool ready) {
        if (!found || !streq(rec->target, cs->node))
                return kverr_set(e, KV_ERR_INTERNAL, -EPERM,
                                 "cluster claims: node '%s' is not the migration target of '%s' in network '%s'", cs->node,
                                 key, network);
        if (rec->target_ready == ready)
                return CS_KEEP;
        rec->target_ready = ready;
        return CS_WRITE;
}

static int decide_ready_yes(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        return decide_ready(cs, rec, found, network, key, e, true);
}

static int decide_ready_no(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        return decide_ready(cs, rec, found, network, key, e, false);
}

int claimstore_set_target_ready(ClaimStore *cs, const char *network, const char *key, bool ready, KvErr *e) {
        int r = store_update(cs, network, key, ready ? decide_ready_yes : decide_ready_no, e);
        return r < 0 ? r : 0;
}

static int decide_finish(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        if (!found)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "cluster claims: no claim '%s' in network '%s'", key, network);
        if (streq(rec->holder, cs->node) && !rec->target[0])
                return CS_KEEP;
        if (!streq(rec->target, cs->node))
                return kverr_set(e, KV_ERR_INTERNAL, -EPERM,
                                 "cluster claims: node '%s' is not the migration target of '%s' (holder '%s', target '%s')",
                                 cs->node, key, rec->holder, rec->target);
        snprintf(rec->holder, sizeof rec->holder, "%s", cs->node);
        rec->target[0] = '\0';
        rec->target_ready = false;
        rec->attached = true;
        return CS_WRITE;
}

int claimstore_finish_migration(ClaimStore *cs, const char *network, const char *key, KvErr *e) {
        int r = store_update(cs, network, key, decide_finish, e);
        return r < 0 ? r : 0;
}

/* This node stops being the target; a record nobody holds any more goes. */
static int drop_target(CsRecord *rec) {
        rec->target[0] = '\0';
        rec->target_ready = false;
        return rec->holder[0] ? CS_WRITE : CS_DELETE;
}

static int decide_abort(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        (void) network, (void) key, (void) e;
        return found && streq(rec->target, cs->node) ? drop_target(rec) : CS_KEEP;
}

int claimstore_abort_migration(ClaimStore *cs, const char *network, const char *key) {
        KvErr e = {};
        return store_update(cs, network, key, decide_abort, &e);
}

static int decide_detach(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        (void) network, (void) key, (void) e;
        if (!found || !streq(rec->holder, cs->node) || !rec->attached)
                return CS_KEEP;
        rec->attached = false;
        return CS_WRITE;
}

int claimstore_detach(ClaimStore *cs, const char *network, const char *key) {
        KvErr e = {};
        return store_update(cs, network, key, decide_detach, &e);
}

static int decide_release(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key, KvErr *e) {
        (void) network, (void) key, (void) e;
        if (!found)
                return CS_KEEP;
        if (streq(rec->holder, cs->node)) {
                if (!rec->target[0])
                        return CS_DELETE;
                rec->holder[0] = '\0';
                rec->attached = false;
                return CS_WRITE;
        }
        return streq(rec->target, cs->node) ? drop_target(rec) : CS_KEEP;
}

int claimstore_release(ClaimStore *cs, const char *network, const char *key) {
        KvErr e = {};
        return store_update(cs, network, key, decide_release, &e);
}

/* ---- node registry ---- */

/* ---- node registry, listing ---- */

int claimstore_set_node_address(ClaimStore *cs, const KvAddr *a) {
        int r = cs->ops->set_node_address(cs, a);
        cs->addr_pending = r < 0;
        cs->pending_addr = *a;
        return r;
}

int claimstore_node_address(ClaimStore *cs, const char *node, KvAddr *ret) {
        if (!claimstore_node_name_ok(node))
                return -EINVAL;
        register_pending(cs);
        return cs->ops->node_address(cs, node, ret);
}

int claimstore_foreach(ClaimStore *cs, claimstore_cb cb, void *userdata) {
        register_pending(cs);
        return cs->ops->foreach(cs, cb, userdata);
}

static int dump_one(const CsRecord *r, void *userdata) {
        json_array_append_new(userdata, claimstore_record_to_json(r));
        return 0;
}

json_t *claimstore_dump(ClaimStore *cs) {
        json_t *arr = json_array();
        if (!arr)
                return NULL;
        if (claimstore_foreach(cs, dump_one, arr) < 0) {
                /* partial is better than nothing for a debug view */
        }
        json_t *d = json_pack("{s:s,s:s,s:b,s:o}", "node", cs->node, "backend",
                              claimstore_backend_to_string(cs->backend), "nodeAddressPending", cs->addr_pending, "claims",
                              arr);
        if (d && cs->ops->describe(cs, d) < 0) {
                json_decref(d);
                return NULL;
        }
        return d;
}

