/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster-wide claim authority, "kube" backend (see claimstore.h, docs/multinode.md): objects of the
 * cluster-scoped CRD networkclaims.kvnet.io/v1alpha1 (kind NetworkClaim), label kvnet.io/role one of
 *
 *   claim    c-<network-key>-<16 hex>         one per (network, key): the record as spec
 *   address  a-<network>-<8 hex>-<address>   one per (network, address): spec.key names the claim that
 *                                            holds it, spec.attached says the holder confirmed it
 *   mac      m-<network>-<8 hex>-<12 hex>    one per (network, MAC), as an address object: a MAC of a network
 *                                            is one claim's cluster-wide (the all-zero MAC is not indexed)
 *   node     n-<node>-<8 hex>                 one per node: spec.ips[0] its underlay address
 *
 * The API server is the arbiter: a create fails with 409 AlreadyExists when the object exists, an update
 * or delete naming a resourceVersion fails with 409 Conflict when someone wrote in between. A take:
 *   1. reads the claim object and checks the rules (cs_take_check);
 *   2. makes sure every address object (and the MAC's, the same way throughout) names this key: created if
 *      absent (unconfirmed); one naming another key is taken, unless its claim does not list the address and
 *      it is confirmed or older than ADDR_STALE_SEC (a crash between the steps): then it is deleted with its
 *      resourceVersion and created;
 *   3. writes the claim: created, or updated with the resourceVersion of step 1 (409: again from 1);
 *   4. confirms every address object: written again (an update with its resourceVersion, or a create if it
 *      has gone). A stealer deletes only what it read before the claim listed the address, with that
 *      resourceVersion, so either its delete or the confirm fails: exactly one of two racing nodes holds
 *      an address. A take that loses an address in step 4 restores the claim and fails;
 *   5. deletes the address objects of addresses the claim no longer lists.
 * Requests are blocking (kube_request_sync) with a bounded timeout; moving them onto netd's loop is later
 * work. */
#include <time.h>

#include "common/json-util.h"
#include "common/log.h"
#include "kube/kube.h"
#include "netd/state/claimstore-priv.h"

#define CS_GROUP_VERSION "kvnet.io/v1alpha1"
#define CS_KIND "NetworkClaim"
#define CS_RESOURCE "networkclaims"
#define LABEL_ROLE "kvnet.io/role"
#define LABEL_NETWORK "kvnet.io/network"
#define ANNOTATION_UPDATED "kvnet.io/updated"
#define CS_RETRIES 16
#define ADDR_STALE_SEC 60
#define NAME_MAX_LEN 128

typedef struct KubeStore {
        KubeClient *client;
        char *source;
} KubeStore;

static KubeStore *K(ClaimStore *cs) {
        return cs->data;
}

int claimstore_kube_init(ClaimStore *cs, const ClaimStoreConfig *cfg, KvErr *e) {
        KubeStore *k = calloc(1, sizeof *k);
        if (!k)
                return -ENOMEM;
        cs->data = k;
        _cleanup_(kube_config_freep) KubeConfig *kc = NULL;
        KvErr ke = {};
        int r = kube_config_load(cfg->kubeconfig, &kc, &ke);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "clusterClaims.kubeconfig '%s': %s",
                                 cfg->kubeconfig ? cfg->kubeconfig : "(default)", ke.msg);
        k->source = strdup(kc->source ? kc->source : "");
        if (!k->source)
                return -ENOMEM;
        r = kube_client_new(kc, NULL, &k->client, &ke);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "clusterClaims: Kubernetes client for '%s': %s", k->source,
                                 ke.msg);
        kube_client_set_timeout(k->client, cfg->timeout_ms ? cfg->timeout_ms : CS_TIMEOUT_MS_DEFAULT);
        /* a claim is a few requests per CNI ADD/DEL: a generous bucket, still a bound on a runaway loop */
        kube_client_set_rate_limit(k->client, 100, 200);
        return 0;
}

static void kube_done(ClaimStore *cs) {
        KubeStore *k = cs->data;
        if (!k)
                return;
        kube_client_free(k->client);
        free(k->source);
        free(k);
        cs->data = NULL;
}

/* ---- names ---- */

/* Lowercase letters and digits of s, anything else as '-', at most max characters. */
static void sanitize(const char *s, size_t max, char *buf) {
        size_t n = 0;
        for (; *s && n < max; s++) {
                char c = *s;
                if (c >= 'A' && c <= 'Z')
                        c = (char) (c - 'A' + 'a');
                buf[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
        }
        buf[n] = '\0';
}

static uint64_t hash2(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        char buf[na + 1 + nb];
        memcpy(buf, a, na);
        buf[na] = '\0';
        memcpy(buf + na + 1, b, nb);
        return kv_hash64(buf, na + 1 + nb);
}

static void network_hash(const char *network, char buf[static 9]) {
        snprintf(buf, 9, "%08llx", (unsigned long long) (kv_hash64(network, strlen(network)) >> 32));
}

static void claim_name(const char *network, const char *key, char buf[static NAME_MAX_LEN]) {
        char both[448], s[48];
        snprintf(both, sizeof both, "%s-%s", network, key);
        sanitize(both, 40, s);
        snprintf(buf, NAME_MAX_LEN, "c-%s-%016llx", s, (unsigned long long) hash2(network, key));
}

static void addr_name(const char *network, const KvAddr *a, char buf[static NAME_MAX_LEN]) {
        char s[32], nh[9], as[40];
        sanitize(network, 24, s);
        network_hash(network, nh);
        if (a->family == AF_INET)
                snprintf(as, sizeof as, "%u-%u-%u-%u", a->bytes[0], a->bytes[1], a->bytes[2], a->bytes[3]);
        else
                for (size_t i = 0; i < 16; i++)
                        snprintf(as + 2 * i, sizeof as - 2 * i, "%02x", a->bytes[i]);
        snprintf(buf, NAME_MAX_LEN, "a-%s-%s-%s", s, nh, as);
}

/* What an index object holds: an address of a network, or the MAC of a claim on it. */
typedef struct Slot {
        bool is_mac;
        KvPrefix p;     /* !is_mac */
        uint8_t mac[6]; /* is_mac */
} Slot;

static Slot addr_slot(const KvAddr *a) {
        return (Slot){ .p = { .addr = *a, .prefixlen = a->family == AF_INET ? 32 : 128 } };
}

static Slot prefix_slot(const KvPrefix *p) {
        return (Slot){ .p = *p };
}

static Slot mac_slot(const uint8_t mac[6]) {
        Slot sl = { .is_mac = true };
        memcpy(sl.mac, mac, 6);
        return sl;
}

static void slot_name(const char *network, const Slot *sl, char buf[static NAME_MAX_LEN]) {
        if (!sl->is_mac) {
                addr_name(network, &sl->p.addr, buf);
                return;
        }
        char s[32], nh[9], m[13];
        sanitize(network, 24, s);
        network_hash(network, nh);
        cs_mac_hex(sl->mac, m);
        snprintf(buf, NAME_MAX_LEN, "m-%s-%s-%s", s, nh, m);
}

/* "address 10.0.0.5" / "MAC 02:..", for messages */
static const char *slot_fmt(const Slot *sl, char buf[static 64]) {
        char a[KV_ADDR_STRLEN], m[KV_MAC_STRLEN];
        if (sl->is_mac)
                snprintf(buf, 64, "MAC %s", kv_mac_fmt(sl->mac, m));
        else
                snprintf(buf, 64, "address %s", kv_addr_fmt(&sl->p.addr, a));
        return buf;
}

/* whether the claim record holds it */
static bool slot_listed(const CsRecord *rec, const Slot *sl) {
        return sl->is_mac ? memcmp(rec->mac, sl->mac, 6) == 0 : cs_has_addr(rec->addrs, rec->n_addrs, &sl->p.addr);
}

static void node_obj_name(const char *node, char buf[static NAME_MAX_LEN]) {
        char s[CS_NODE_MAX];
        sanitize(node, 40, s);
        snprintf(buf, NAME_MAX_LEN, "n-%s-%08llx", s, (unsigned long long) (kv_hash64(node, strlen(node)) >> 32));
}

/* ---- requests ---- */

static int request(ClaimStore *cs, KubeVerb verb, const char *name, json_t *body, const char *selector, json_t **ret,
                   KvErr *e) {
        KubeRequest req = { .verb = verb,
                            .ref = { .group_version = CS_GROUP_VERSION, .resource = CS_RESOURCE, .name = name },
                            .body = body,
                            .label_selector = selector };
        KvErr le = {};
        int r = kube_request_sync(K(cs)->client, &req, ret, &le);
        /* absent, exists, changed: the callers' expected answers, not errors (the first error in e wins) */
        if (r < 0 && r != -ENOENT && r != -EEXIST && r != -EBUSY)
                kverr_set(e, le.code ? le.code : KV_ERR_INTERNAL, r, "cluster claims: %s", le.msg);
        return r;
}

/* GET: 1 and *ret (owned), 0 when absent. */
static int get_obj(ClaimStore *cs, const char *name, json_t **ret, KvErr *e) {
        int r = request(cs, KUBE_GET, name, NULL, NULL, ret, e);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : 1;
}

static const char *obj_rv(json_t *obj) {
        return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* DELETE with a resourceVersion precondition: 0 (also when it has gone), -EBUSY when it changed. */
static int delete_obj(ClaimStore *cs, const char *name, const char *rv, KvErr *e) {
        _cleanup_json_ json_t *opts = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
                                                "preconditions", "resourceVersion", rv ? rv : "");
        if (!opts)
                return -ENOMEM;
        int r = request(cs, KUBE_DELETE, name, opts, NULL, NULL, e);
        return r == -ENOENT ? 0 : r;
}

/* The object for spec; rv NULL for a create. */
static json_t *make_obj(const char *name, const char *role, const char *network, const char *rv, json_t *spec) {
        char nh[9], upd[32];
        network_hash(network, nh);
        snprintf(upd, sizeof upd, "%llu", (unsigned long long) realtime_usec());
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s},s:{s:s}},s:O}", "apiVersion", CS_GROUP_VERSION, "kind",
                              CS_KIND, "metadata", "name", name, "labels", LABEL_ROLE, role, LABEL_NETWORK, nh,
                              "annotations", ANNOTATION_UPDATED, upd, "spec", spec);
        if (o && rv)
                json_object_set_new(json_object_get(o, "metadata"), "resourceVersion", json_string(rv));
        return o;
}

/* Writes obj: a create when rv is NULL, else an update with rv. -EEXIST / -EBUSY / -ENOENT: someone else
 * got there first. */
static int write_obj(ClaimStore *cs, const char *name, const char *role, const char *network, const char *rv,
                     json_t *spec, KvErr *e) {
        _cleanup_json_ json_t *o = make_obj(name, role, network, rv, spec);
        if (!o)
                return -ENOMEM;
        return request(cs, rv ? KUBE_UPDATE : KUBE_CREATE, name, o, NULL, NULL, e);
}

/* ---- records ---- */

static int obj_record(json_t *obj, CsRecord *ret) {
        json_t *spec = json_object_get(obj, "spec");
        if (!json_is_object(spec))
                return -EBADMSG;
        int r = claimstore_record_from_json(spec, ret);
        if (r < 0)
                return r;
        const char *u = json_string_value(
                json_object_get(json_object_get(json_object_get(obj, "metadata"), "annotations"), ANNOTATION_UPDATED));
        ret->updated_usec = u ? strtoull(u, NULL, 10) : 0;
        return 0;
}

static json_t *record_spec(const CsRecord *rec) {
        json_t *o = claimstore_record_to_json(rec);
        if (o) {
                json_object_del(o, "version");
                json_object_del(o, "updated");
        }
        return o;
}

/* The claim object of (network, key): 1 with *ret and *ret_obj, 0 when absent, < 0. */
static int read_claim(ClaimStore *cs, const char *network, const char *key, CsRecord *ret, json_t **ret_obj,
                      KvErr *e) {
        char name[NAME_MAX_LEN];
        claim_name(network, key, name);
        _cleanup_json_ json_t *obj = NULL;
        int r = get_obj(cs, name, &obj, e);
        if (r <= 0)
                return r;
        CsRecord rec = {};
        if (obj_record(obj, &rec) < 0 || !streq(rec.network, network) || !streq(rec.key, key))
                return kverr_set(e, KV_ERR_INTERNAL, -EBADMSG,
                                 "cluster claims: NetworkClaim '%s' is not the claim of '%s' in network '%s' (corrupt, "
                                 "or a name collision)",
                                 name, key, network);
        *ret = rec;
        if (ret_obj)
                *ret_obj = TAKE_PTR(obj);
        return 1;
}

static int kube_get(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) {
        KvErr e = {};
        return read_claim(cs, network, key, ret, NULL, &e);
}

/* ---- address objects ---- */

typedef struct AddrObj {
        char key[320];
        char holder[CS_NODE_MAX];
        bool confirmed;
        time_t created;
        char rv[64];
} AddrObj;

static int addr_obj_parse(json_t *obj, const char *network, AddrObj *ret) {
        json_t *spec = json_object_get(obj, "spec");
        const char *n = json_string_value(json_object_get(spec, "network"));
        const char *k = json_string_value(json_object_get(spec, "key"));
        const char *h = json_string_value(json_object_get(spec, "holder"));
        const char *rv = obj_rv(obj);
        const char *ct = json_string_value(json_object_get(json_object_get(obj, "metadata"), "creationTimestamp"));
        if (!n || !k || !rv || !streq(n, network) || strlen(k) >= sizeof ret->key || strlen(rv) >= sizeof ret->rv)
                return -EBADMSG;
        AddrObj a = { .confirmed = json_is_true(json_object_get(spec, "attached")) };
        snprintf(a.key, sizeof a.key, "%s", k);
        snprintf(a.holder, sizeof a.holder, "%s", h ? h : "");
        snprintf(a.rv, sizeof a.rv, "%s", rv);
        struct tm tm = {};
        if (ct && strptime(ct, "%Y-%m-%dT%H:%M:%SZ", &tm))
                a.created = timegm(&tm);
        *ret = a;
        return 0;
}

/* The index object of sl: 1 with *ret, 0 absent, < 0. */
static int read_slot(ClaimStore *cs, const char *network, const Slot *sl, AddrObj *ret, KvErr *e) {
        char name[NAME_MAX_LEN];
        slot_name(network, sl, name);
        _cleanup_json_ json_t *obj = NULL;
        int r = get_obj(cs, name, &obj, e);
        if (r <= 0)
                return r;
        if (addr_obj_parse(obj, network, ret) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -EBADMSG,
                                 "cluster claims: NetworkClaim '%s' is not an address of network '%s'", name, network);
        return 1;
}

static int write_slot(ClaimStore *cs, const char *network, const char *key, const Slot *sl, bool confirmed,
                      const char *rv, KvErr *e) {
        char name[NAME_MAX_LEN], s[KV_ADDR_STRLEN], m[KV_MAC_STRLEN] = "";
        slot_name(network, sl, name);
        if (sl->is_mac)
                kv_mac_fmt(sl->mac, m);
        _cleanup_json_ json_t *spec = json_pack("{s:s,s:s,s:[],s:s,s:s,s:b,s:s,s:b}", "network", network, "key", key,
                                                "ips", "mac", m, "holder", "", "attached", confirmed, "target", "",
                                                "targetReady", false);
        if (!spec || (!sl->is_mac && json_array_append_new(json_object_get(spec, "ips"),
                                                           json_string(kv_prefix_fmt(&sl->p, s))) < 0))
                return -ENOMEM;
        return write_obj(cs, name, sl->is_mac ? "mac" : "address", network, rv, spec, e);
}

/* Whether the index object (held for another key) is still that key's: its claim lists the address (MAC), or
 * the claim may be about to (unconfirmed and young). *ret_holder: the claim's holder. */
static int slot_owner_live(ClaimStore *cs, const char *network, const Slot *sl, const AddrObj *ao, char *ret_holder,
                           KvErr *e) {
        CsRecord owner = {};
        KvErr oe = {};
        int r = read_claim(cs, network, ao->key, &owner, NULL, &oe);
        if (r == -EBADMSG)
                r = 0; /* not a claim of that key: it does not list the address */
        if (r < 0)
                return kverr_set(e, oe.code, r, "%s", oe.msg);
        snprintf(ret_holder, CS_NODE_MAX, "%s", r > 0 && owner.holder[0] ? owner.holder : "?");
        if (r > 0 && slot_listed(&owner, sl))
                return 1;
        if (!ao->confirmed && (ao->created == 0 || time(NULL) - ao->created < ADDR_STALE_SEC))
                return 1;
        return 0;
}

static bool kube_addr_taken(ClaimStore *cs, const char *network, const KvAddr *a, const char *key) {
        AddrObj ao;
        KvErr e = {};
        char holder[CS_NODE_MAX];
        Slot sl = addr_slot(a);
        int r = read_slot(cs, network, &sl, &ao, &e);
        if (r <= 0)
                return r < 0;
        if (streq(ao.key, key))
                return false;
        return slot_owner_live(cs, network, &sl, &ao, holder, &e) != 0;
}

/* Step 2 of a take: the index object names key (created unconfirmed if absent). *ret_created: whether
 * this call created it. */
static int slot_acquire(ClaimStore *cs, const char *network, const char *key, const Slot *sl, bool *ret_created,
                        KvErr *e) {
        char s[64], holder[CS_NODE_MAX], name[NAME_MAX_LEN];
        *ret_created = false;
        for (int i = 0; i < CS_RETRIES; i++) {
                AddrObj ao;
                int r = read_slot(cs, network, sl, &ao, e);
                if (r < 0)
                        return r;
                if (r == 0) {
                        r = write_slot(cs, network, key, sl, false, NULL, e);
                        if (r == -EEXIST)
                                continue;
                        if (r < 0)
                                return r;
                        *ret_created = true;
                        return 0;
                }
                if (streq(ao.key, key))
                        return 0;
                r = slot_owner_live(cs, network, sl, &ao, holder, e);
                if (r < 0)
                        return r;
                if (r > 0)
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "cluster claims: %s in network '%s' is held by '%s' on node '%s'",
                                         slot_fmt(sl, s), network, ao.key, holder);
                slot_name(network, sl, name);
                log_info("cluster claims: NetworkClaim '%s' of '%s' is stale (its claim does not list %s); reclaiming",
                         name, ao.key, slot_fmt(sl, s));
                r = delete_obj(cs, name, ao.rv, e);
                if (r < 0 && r != -EBUSY)
                        return r;
        }
        return kverr_set(e, KV_ERR_INTERNAL, -EBUSY, "cluster claims: %s in network '%s' kept changing",
                         slot_fmt(sl, s), network);
}

/* Step 4: writes the index object again, for key and confirmed. -EADDRINUSE when another key has it. */
static int slot_confirm(ClaimStore *cs, const char *network, const char *key, const Slot *sl, KvErr *e) {
        char s[64];
        for (int i = 0; i < CS_RETRIES; i++) {
                AddrObj ao;
                int r = read_slot(cs, network, sl, &ao, e);
                if (r < 0)
                        return r;
                if (r > 0 && !streq(ao.key, key))
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "cluster claims: %s in network '%s' was taken by '%s' meanwhile",
                                         slot_fmt(sl, s), network, ao.key);
                r = write_slot(cs, network, key, sl, true, r > 0 ? ao.rv : NULL, e);
                if (r == -EEXIST || r == -EBUSY || r == -ENOENT)
                        continue;
                return r;
        }
        return kverr_set(e, KV_ERR_INTERNAL, -EBUSY, "cluster claims: %s in network '%s' kept changing",
                         slot_fmt(sl, s), network);
}

/* Deletes the index object if it names key and, unless force, is not listed by key's claim (best effort:
 * what stays is reclaimed as stale). */
static void slot_release(ClaimStore *cs, const char *network, const char *key, const Slot *sl, bool force) {
        KvErr e = {};
        AddrObj ao;
        char name[NAME_MAX_LEN];
        if (read_slot(cs, network, sl, &ao, &e) <= 0 || !streq(ao.key, key))
                return;
        if (!force) {
                CsRecord rec;
                int r = read_claim(cs, network, key, &rec, NULL, &e);
                if (r != 0 && (r < 0 || slot_listed(&rec, sl)))
                        return;
        }
        slot_name(network, sl, name);
        IGNORE_RESULT(delete_obj(cs, name, ao.rv, &e));
}

/* ---- claim objects ---- */

static int write_claim(ClaimStore *cs, const CsRecord *rec, const char *rv, KvErr *e) {
        char name[NAME_MAX_LEN];
        claim_name(rec->network, rec->key, name);
        _cleanup_json_ json_t *spec = record_spec(rec);
        if (!spec)
                return -ENOMEM;
        return write_obj(cs, name, "claim", rec->network, rv, spec, e);
}

static bool conflict(int r) {
        return r == -EEXIST || r == -EBUSY || r == -ENOENT;
}

static int kube_take(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                     const uint8_t mac[6], KvErr *e) {
        /* the addresses, then the MAC (when there is one): each an index object */
        Slot slots[CS_MAX_ADDRS + 1];
        size_t n = 0;
        for (size_t i = 0; i < n_addrs; i++)
                slots[n++] = prefix_slot(&addrs[i]);
        if (!kv_mac_is_zero(mac))
                slots[n++] = mac_slot(mac);
        bool created[CS_MAX_ADDRS + 1] = {};
        int r = -EBUSY;
        for (int attempt = 0; attempt < CS_RETRIES; attempt++) {
                _cleanup_json_ json_t *obj = NULL;
                CsRecord old = {};
                int found = read_claim(cs, network, key, &old, &obj, e);
                if (found < 0) {
                        r = found;
                        break;
                }
                if ((r = cs_take_check(cs, &old, found, network, key, e)) < 0)
                        break;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        bool c;
                        r = slot_acquire(cs, network, key, &slots[i], &c, e);
                        created[i] = created[i] || c;
                }
                if (r < 0)
                        break;
                CsRecord rec;
                cs_take_record(cs, &old, found, network, key, addrs, n_addrs, mac, &rec);
                KvErr we = {};
                r = write_claim(cs, &rec, found ? obj_rv(obj) : NULL, &we);
                if (conflict(r)) {
                        r = -EBUSY;
                        continue; /* another writer: read again and decide again */
                }
                if (r < 0) {
                        kverr_set(e, we.code, r, "%s", we.msg);
                        break;
                }
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = slot_confirm(cs, network, key, &slots[i], e);
                if (r < 0) {
                        /* an address (MAC) went to another key between steps 2 and 4: put the claim back */
                        KvErr ue = {};
                        _cleanup_json_ json_t *now = NULL;
                        CsRecord cur;
                        if (read_claim(cs, network, key, &cur, &now, &ue) > 0 && streq(cur.holder, cs->node)) {
                                if (found)
                                        IGNORE_RESULT(write_claim(cs, &old, obj_rv(now), &ue));
                                else {
                                        char name[NAME_MAX_LEN];
                                        claim_name(network, key, name);
                                        IGNORE_RESULT(delete_obj(cs, name, obj_rv(now), &ue));
                                }
                        }
                        break;
                }
                for (size_t i = 0; found && i < old.n_addrs; i++)
                        if (!cs_has_addr(addrs, n_addrs, &old.addrs[i].addr)) {
                                Slot sl = addr_slot(&old.addrs[i].addr);
                                slot_release(cs, network, key, &sl, false);
                        }
                if (found && !kv_mac_is_zero(old.mac) && memcmp(old.mac, mac, 6) != 0) {
                        Slot sl = mac_slot(old.mac);
                        slot_release(cs, network, key, &sl, false);
                }
                return 0;
        }
        if (r == -EBUSY && !kverr_is_set(e))
                kverr_set(e, KV_ERR_INTERNAL, -EBUSY, "cluster claims: the claim of '%s' kept changing", key);
        /* what this call created and the claim does not list goes again */
        for (size_t i = 0; i < n; i++)
                if (created[i])
                        slot_release(cs, network, key, &slots[i], false);
        return r;
}

/* One read-decide-write step: GET, decide, update with the resourceVersion read (or delete with it);
 * 409 Conflict → again, at most CS_RETRIES times. */
static int kube_update(ClaimStore *cs, const char *network, const char *key, cs_decide_fn decide, KvErr *e) {
        char name[NAME_MAX_LEN];
        claim_name(network, key, name);
        for (int attempt = 0; attempt < CS_RETRIES; attempt++) {
                _cleanup_json_ json_t *obj = NULL;
                CsRecord rec = {};
                int found = read_claim(cs, network, key, &rec, &obj, e);
                if (found < 0)
                        return found;
                int d = decide(cs, &rec, found, network, key, e);
                if (d < 0 || d == CS_KEEP)
                        return d;
                KvErr we = {};
                int r;
                if (d == CS_WRITE)
                        r = write_claim(cs, &rec, found ? obj_rv(obj) : NULL, &we);
                else
                        r = found ? delete_obj(cs, name, obj_rv(obj), &we) : 0;
                if (conflict(r))
                        continue;
                if (r < 0)
                        return kverr_set(e, we.code, r, "%s", we.msg);
                if (d == CS_DELETE) {
                        for (size_t i = 0; i < rec.n_addrs; i++) {
                                Slot sl = addr_slot(&rec.addrs[i].addr);
                                slot_release(cs, network, key, &sl, true);
                        }
                        if (!kv_mac_is_zero(rec.mac)) {
                                Slot sl = mac_slot(rec.mac);
                                slot_release(cs, network, key, &sl, true);
                        }
                }
                return 1;
        }
        return kverr_set(e, KV_ERR_INTERNAL, -EBUSY, "cluster claims: NetworkClaim '%s' kept changing (%d tries)", name,
                         CS_RETRIES);
}

/* ---- node registry, listing ---- */

static int kube_set_node_address(ClaimStore *cs, const KvAddr *a) {
        char name[NAME_MAX_LEN], s[KV_ADDR_STRLEN];
        node_obj_name(cs->node, name);
        KvPrefix p = { .addr = *a, .prefixlen = a->family == AF_INET ? 32 : 128 };
        _cleanup_json_ json_t *spec = json_pack("{s:s,s:s,s:[s],s:s,s:s,s:b,s:s,s:b}", "network", "", "key", cs->node,
                                                "ips", kv_prefix_fmt(&p, s), "mac", "", "holder", cs->node, "attached",
                                                false, "target", "", "targetReady", false);
        if (!spec)
                return -ENOMEM;
        for (int i = 0; i < CS_RETRIES; i++) {
                KvErr e = {};
                _cleanup_json_ json_t *obj = NULL;
                int r = get_obj(cs, name, &obj, &e);
                if (r < 0)
                        return r;
                r = write_obj(cs, name, "node", "", r > 0 ? obj_rv(obj) : NULL, spec, &e);
                if (!conflict(r))
                        return r < 0 ? r : 0;
        }
        return -EBUSY;
}

static int kube_node_address(ClaimStore *cs, const char *node, KvAddr *ret) {
        char name[NAME_MAX_LEN];
        node_obj_name(node, name);
        KvErr e = {};
        _cleanup_json_ json_t *obj = NULL;
        int r = get_obj(cs, name, &obj, &e);
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        json_t *spec = json_object_get(obj, "spec");
        const char *ip = json_string_value(json_array_get(json_object_get(spec, "ips"), 0));
        KvPrefix p;
        if (!streq_ptr(json_string_value(json_object_get(spec, "key")), node) || !ip || kv_prefix_parse(ip, &p) < 0)
                return -EBADMSG;
        *ret = p.addr;
        return 0;
}

static int kube_foreach(ClaimStore *cs, claimstore_cb cb, void *userdata) {
        KvErr e = {};
        _cleanup_json_ json_t *list = NULL;
        int r = request(cs, KUBE_LIST, NULL, NULL, LABEL_ROLE "=claim", &list, &e);
        if (r < 0)
                return r;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(list, "items"), i, item) {
                CsRecord rec;
                if (obj_record(item, &rec) < 0)
                        continue;
                r = cb(&rec, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int kube_describe(ClaimStore *cs, json_t *dump) {
        const KubeConfig *c = kube_client_config(K(cs)->client);
        if (json_object_set_new(dump, "kubeconfig", json_string(K(cs)->source)) < 0 ||
            json_object_set_new(dump, "server", json_string(c->server)) < 0)
                return -ENOMEM;
        return 0;
}

const ClaimStoreOps claimstore_kube_ops = {
        .done = kube_done,
        .get = kube_get,
        .addr_taken = kube_addr_taken,
        .take = kube_take,
        .update = kube_update,
        .set_node_address = kube_set_node_address,
        .node_address = kube_node_address,
        .foreach = kube_foreach,
        .describe = kube_describe,
};
