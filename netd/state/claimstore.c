/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster-wide claim authority, "dir" backend (see claimstore.h). */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "netd/ipam/ipam-priv.h"
#include "netd/state/claimstore.h"

#define CS_RECORD_MAX (64 * 1024)

struct ClaimStore {
        char dir[3072]; /* room for the file names below it in a PATH_MAX buffer */
        char node[CS_NODE_MAX];
        bool durable;
        int lock_fd;
};

static bool node_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= CS_NODE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return !streq(s, ".") && !streq(s, "..");
}

int claimstore_open(const char *dir, const char *node, bool durable, ClaimStore **ret, KvErr *e) {
        if (!dir || !*dir || strlen(dir) >= 3072)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "clusterClaims: directory '%.64s' is empty or too long",
                                 dir ? dir : "");
        if (!node || !node_name_ok(node))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "nodeName: '%.64s' must be 1..%d characters of [A-Za-z0-9_.-] (needed with clusterClaims)",
                                 node ? node : "", CS_NODE_MAX - 1);
        _cleanup_free_ ClaimStore *cs = calloc(1, sizeof *cs);
        if (!cs)
                return -ENOMEM;
        snprintf(cs->dir, sizeof cs->dir, "%s", dir);
        snprintf(cs->node, sizeof cs->node, "%s", node);
        cs->durable = durable;
        char p[PATH_MAX];
        int r;
        snprintf(p, sizeof p, "%s/claims", dir);
        if ((r = mkdir_p(p, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "clusterClaims: cannot create '%s'", p);
        snprintf(p, sizeof p, "%s/addrs", dir);
        if ((r = mkdir_p(p, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "clusterClaims: cannot create '%s'", p);
        snprintf(p, sizeof p, "%s/lock", dir);
        cs->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (cs->lock_fd < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "clusterClaims: cannot open '%s'", p);
        *ret = TAKE_PTR(cs);
        return 0;
}

ClaimStore *claimstore_free(ClaimStore *cs) {
        if (!cs)
                return NULL;
        if (cs->lock_fd >= 0)
                close(cs->lock_fd);
        free(cs);
        return NULL;
}

const char *claimstore_node(const ClaimStore *cs) {
        return cs->node;
}

/* ---- locking ---- */

static int cs_lock(ClaimStore *cs) {
        while (flock(cs->lock_fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

static void cs_unlock(ClaimStore *cs) {
        (void) flock(cs->lock_fd, LOCK_UN);
}

/* ---- paths ---- */

static void record_path(ClaimStore *cs, const char *network, const char *key, char *buf, size_t n, char *fname,
                        size_t fn) {
        char f[IPAM_FNAME_MAX];
        ipam_claim_filename(network, key, f, sizeof f);
        snprintf(buf, n, "%s/claims/%s", cs->dir, f);
        if (fname)
                snprintf(fname, fn, "%s", f);
}

static int addr_path(ClaimStore *cs, const char *network, const KvAddr *a, bool mkdir, char *buf, size_t n) {
        char nd[128], s[KV_ADDR_STRLEN];
        ipam_netdir_name(network, nd, sizeof nd);
        if (mkdir) {
                snprintf(buf, n, "%s/addrs/%s", cs->dir, nd);
                int r = mkdir_p(buf, 0700);
                if (r < 0)
                        return r;
        }
        snprintf(buf, n, "%s/addrs/%s/%s", cs->dir, nd, kv_addr_fmt(a, s));
        return 0;
}

/* ---- record (de)serialisation ---- */

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

static int record_from_json(json_t *o, CsRecord *ret) {
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

static int record_read_path(const char *path, CsRecord *ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, CS_RECORD_MAX, &text, &len);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        if (!o || !json_is_object(o))
                return -EBADMSG;
        return record_from_json(o, ret);
}

/* 1 found, 0 absent (also: a corrupt record, which is logged and treated as absent), < 0 I/O error. */
static int record_read(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) {
        char path[PATH_MAX];
        record_path(cs, network, key, path, sizeof path, NULL, 0);
        int r = record_read_path(path, ret);
        if (r == -ENOENT)
                return 0;
        if (r == -EBADMSG) {
                log_warning("cluster claims: '%s' is corrupt; treating the claim as absent", path);
                return 0;
        }
        if (r < 0)
                return r;
        if (!streq(ret->network, network) || !streq(ret->key, key))
                return 0; /* a hash collision: not this claim */
        return 1;
}

static int record_write(ClaimStore *cs, CsRecord *rec) {
        char path[PATH_MAX];
        record_path(cs, rec->network, rec->key, path, sizeof path, NULL, 0);
        rec->updated_usec = realtime_usec();
        _cleanup_json_ json_t *o = claimstore_record_to_json(rec);
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dump_compact(o);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), cs->durable);
}

/* ---- address index ---- */

/* The record file name that holds address a, in *buf ("" when free). */
static int addr_owner(ClaimStore *cs, const char *network, const KvAddr *a, char *buf, size_t n) {
        char path[PATH_MAX];
        buf[0] = '\0';
        int r = addr_path(cs, network, a, false, path, sizeof path);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = NULL;
        size_t len;
        r = read_file_max(path, 1024, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
        snprintf(buf, n, "%s", text);
        return 0;
}

/* An address whose owner file no longer exists (a crash between the two writes) is free. */
static bool owner_alive(ClaimStore *cs, const char *fname) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/claims/%s", cs->dir, fname);
        return access(path, F_OK) == 0;
}

bool claimstore_addr_taken(ClaimStore *cs, const char *network, const KvAddr *a, const char *key) {
        char owner[IPAM_FNAME_MAX], mine[IPAM_FNAME_MAX];
        if (addr_owner(cs, network, a, owner, sizeof owner) < 0)
                return true;
        if (!owner[0])
                return false;
        ipam_claim_filename(network, key, mine, sizeof mine);
        if (streq(owner, mine))
                return false;
        return owner_alive(cs, owner);
}

static int addr_set(ClaimStore *cs, const char *network, const KvAddr *a, const char *fname) {
        char path[PATH_MAX];
        int r = addr_path(cs, network, a, true, path, sizeof path);
        if (r < 0)
                return r;
        return write_file_atomic(path, fname, strlen(fname), cs->durable);
}

static void addr_clear(ClaimStore *cs, const char *network, const KvAddr *a, const char *fname) {
        char owner[IPAM_FNAME_MAX], path[PATH_MAX];
        if (addr_owner(cs, network, a, owner, sizeof owner) < 0 || !streq(owner, fname))
                return;
        if (addr_path(cs, network, a, false, path, sizeof path) < 0)
                return;
        IGNORE_RESULT(unlink_durable(path, cs->durable));
}

static bool has_addr(const KvPrefix *list, size_t n, const KvAddr *a) {
        for (size_t i = 0; i < n; i++)
                if (kv_addr_equal(&list[i].addr, a))
                        return true;
        return false;
}

static int record_delete(ClaimStore *cs, const CsRecord *rec) {
        char path[PATH_MAX], fname[IPAM_FNAME_MAX];
        record_path(cs, rec->network, rec->key, path, sizeof path, fname, sizeof fname);
        for (size_t i = 0; i < rec->n_addrs; i++)
                addr_clear(cs, rec->network, &rec->addrs[i].addr, fname);
        int r = unlink_durable(path, cs->durable);
        return r == -ENOENT ? 0 : r;
}

/* ---- operations ---- */

int claimstore_get(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) {
        int r = cs_lock(cs);
        if (r < 0)
                return r;
        r = record_read(cs, network, key, ret);
        cs_unlock(cs);
        return r;
}

static int take_locked(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                       const uint8_t mac[6], KvErr *e) {
        char a[KV_ADDR_STRLEN], fname[IPAM_FNAME_MAX], owner[IPAM_FNAME_MAX], path[PATH_MAX];
        if (strlen(network) >= sizeof(((CsRecord *) NULL)->network) || strlen(key) >= sizeof(((CsRecord *) NULL)->key))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cluster claims: network or key too long");
        if (n_addrs > CS_MAX_ADDRS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cluster claims: %zu addresses, at most %d", n_addrs,
                                 CS_MAX_ADDRS);
        CsRecord old = {};
        int found = record_read(cs, network, key, &old);
        if (found < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, found, "cluster claims: cannot read the claim of '%s'", key);
        if (found && old.holder[0] && !streq(old.holder, cs->node)) {
                if (old.attached || old.target[0])
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY,
                                         "cluster claims: '%s' in network '%s' is held by node '%s'%s%s", key, network,
                                         old.holder, old.target[0] ? " and migrating to node " : "", old.target);
        }
        if (found && old.target[0] && !streq(old.target, cs->node) && !old.holder[0])
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY,
                                 "cluster claims: '%s' in network '%s' is being migrated to node '%s'", key, network,
                                 old.target);
        record_path(cs, network, key, path, sizeof path, fname, sizeof fname);
        for (size_t i = 0; i < n_addrs; i++) {
                int r = addr_owner(cs, network, &addrs[i].addr, owner, sizeof owner);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot read address %s",
                                               kv_addr_fmt(&addrs[i].addr, a));
                if (owner[0] && !streq(owner, fname) && owner_alive(cs, owner)) {
                        CsRecord other = {};
                        char opath[PATH_MAX];
                        snprintf(opath, sizeof opath, "%s/claims/%s", cs->dir, owner);
                        bool known = record_read_path(opath, &other) == 0;
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "cluster claims: address %s in network '%s' is held by '%s' on node '%s'",
                                         kv_addr_fmt(&addrs[i].addr, a), network, known ? other.key : owner,
                                         known ? other.holder : "?");
                }
        }
        CsRecord rec = { .n_addrs = n_addrs, .attached = true };
        strcpy(rec.network, network);
        strcpy(rec.key, key);
        memcpy(rec.addrs, addrs, sizeof addrs[0] * n_addrs);
        memcpy(rec.mac, mac, 6);
        snprintf(rec.holder, sizeof rec.holder, "%s", cs->node);
        if (found && streq(old.holder, cs->node)) {
                snprintf(rec.target, sizeof rec.target, "%s", old.target);
                rec.target_ready = old.target_ready;
        }
        /* Addresses first: a crash before the record leaves index entries whose owner file is missing or
         * does not list them, which count as free (owner_alive) or are rewritten by the next take. */
        for (size_t i = 0; i < n_addrs; i++) {
                int r = addr_set(cs, network, &addrs[i].addr, fname);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot record address %s",
                                               kv_addr_fmt(&addrs[i].addr, a));
        }
        int r = record_write(cs, &rec);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot write '%s'", path);
        for (size_t i = 0; found && i < old.n_addrs; i++)
                if (!has_addr(addrs, n_addrs, &old.addrs[i].addr))
                        addr_clear(cs, network, &old.addrs[i].addr, fname);
        return 0;
}

int claimstore_take(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                    const uint8_t mac[6], KvErr *e) {
        int r = cs_lock(cs);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot lock '%s'", cs->dir);
        r = take_locked(cs, network, key, addrs, n_addrs, mac, e);
        cs_unlock(cs);
        return r;
}

/* One read-decide-write step under the lock. decide() returns < 0 (error, nothing written), CS_KEEP,
 * CS_WRITE (rec as modified) or CS_DELETE. The result is decide's error, an I/O error, 1 when the record
 * was written or deleted, 0 when kept. */
enum { CS_KEEP = 0, CS_WRITE = 1, CS_DELETE = 2 };
typedef int (*cs_decide_fn)(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key,
                            KvErr *e);

static int update_record(ClaimStore *cs, const char *network, const char *key, cs_decide_fn decide, KvErr *e) {
        int r = cs_lock(cs);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot lock '%s'", cs->dir);
        CsRecord rec = {};
        r = record_read(cs, network, key, &rec);
        if (r < 0)
                r = kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot read the claim of '%s'", key);
        else {
                r = decide(cs, &rec, r > 0, network, key, e);
                if (r == CS_WRITE || r == CS_DELETE) {
                        int w = r == CS_WRITE ? record_write(cs, &rec) : record_delete(cs, &rec);
                        r = w < 0 ? kverr_set_errno(e, KV_ERR_INTERNAL, w, "cluster claims: cannot update the claim of '%s'",
                                                    key)
                                  : 1;
                }
        }
        cs_unlock(cs);
        return r;
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
        int r = update_record(cs, network, key, decide_begin, e);
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
        int r = update_record(cs, network, key, ready ? decide_ready_yes : decide_ready_no, e);
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
        int r = update_record(cs, network, key, decide_finish, e);
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
        return update_record(cs, network, key, decide_abort, &e);
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
        return update_record(cs, network, key, decide_detach, &e);
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
        return update_record(cs, network, key, decide_release, &e);
}

/* ---- node registry ---- */

int claimstore_set_node_address(ClaimStore *cs, const KvAddr *a) {
        char p[PATH_MAX], s[KV_ADDR_STRLEN];
        snprintf(p, sizeof p, "%s/nodes", cs->dir);
        int r = mkdir_p(p, 0700);
        if (r < 0)
                return r;
        snprintf(p, sizeof p, "%s/nodes/%s.json", cs->dir, cs->node);
        _cleanup_json_ json_t *o = json_pack("{s:s,s:s}", "node", cs->node, "address", kv_addr_fmt(a, s));
        _cleanup_free_ char *text = o ? json_dump_compact(o) : NULL;
        if (!text)
                return -ENOMEM;
        return write_file_atomic(p, text, strlen(text), cs->durable);
}

int claimstore_node_address(ClaimStore *cs, const char *node, KvAddr *ret) {
        char p[PATH_MAX];
        if (!node_name_ok(node))
                return -EINVAL;
        snprintf(p, sizeof p, "%s/nodes/%s.json", cs->dir, node);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(p, 4096, &text, &len);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        const char *a = json_string_value(json_object_get(o, "address"));
        if (!a || kv_addr_parse(a, ret) < 0)
                return -EBADMSG;
        return 0;
}

int claimstore_foreach(ClaimStore *cs, claimstore_cb cb, void *userdata) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/claims", cs->dir);
        int r = cs_lock(cs);
        if (r < 0)
                return r;
        DIR *d = opendir(path);
        if (!d) {
                r = negative_errno();
                cs_unlock(cs);
                return r;
        }
        r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (de->d_name[0] == '.' || n < 6 || n >= IPAM_FNAME_MAX || !streq(de->d_name + n - 5, ".json"))
                        continue;
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/claims/%.*s", cs->dir, IPAM_FNAME_MAX, de->d_name);
                CsRecord rec;
                if (record_read_path(p, &rec) < 0)
                        continue;
                r = cb(&rec, userdata);
        }
        closedir(d);
        cs_unlock(cs);
        return r < 0 ? r : 0;
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
        return json_pack("{s:s,s:s,s:o}", "node", cs->node, "dir", cs->dir, "claims", arr);
}
