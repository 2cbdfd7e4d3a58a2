/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster-wide claim authority, "dir" backend (see claimstore.h): a directory every node can reach, every
 * step under flock(DIR/lock). */
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
#include "netd/state/claimstore-priv.h"

#define CS_RECORD_MAX (64 * 1024)

typedef struct DirStore {
        char dir[3072]; /* room for the file names below it in a PATH_MAX buffer */
        bool durable;
        int lock_fd;
        unsigned timeout_ms; /* the longest wait for DIR/lock */
} DirStore;

static DirStore *D(ClaimStore *cs) {
        return cs->data;
}

int claimstore_dir_init(ClaimStore *cs, const ClaimStoreConfig *cfg, KvErr *e) {
        const char *dir = cfg->dir;
        if (!dir || !*dir || strlen(dir) >= 3072)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "clusterClaims: directory '%.64s' is empty or too long",
                                 dir ? dir : "");
        DirStore *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->lock_fd = -1;
        cs->data = d;
        snprintf(d->dir, sizeof d->dir, "%s", dir);
        d->durable = cfg->durable;
        d->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : CS_TIMEOUT_MS_DEFAULT;
        char p[PATH_MAX];
        int r;
        snprintf(p, sizeof p, "%s/claims", dir);
        if ((r = mkdir_p(p, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "clusterClaims: cannot create '%s'", p);
        snprintf(p, sizeof p, "%s/addrs", dir);
        if ((r = mkdir_p(p, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "clusterClaims: cannot create '%s'", p);
        snprintf(p, sizeof p, "%s/lock", dir);
        d->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (d->lock_fd < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "clusterClaims: cannot open '%s'", p);
        return 0;
}

static void dir_done(ClaimStore *cs) {
        DirStore *d = cs->data;
        if (!d)
                return;
        if (d->lock_fd >= 0)
                close(d->lock_fd);
        free(d);
        cs->data = NULL;
}

/* The store's lock, waited for at most timeout_ms: a netd that holds it and hangs (or a stuck file system) must not
 * stop every other node's netd, whose loop waits here. -ETIMEDOUT then, logged naming the lock. */
static int cs_lock(ClaimStore *cs) {
        DirStore *d = D(cs);
        uint64_t deadline = now_usec() + (uint64_t) d->timeout_ms * 1000, pause = 200;
        for (;;) {
                if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                uint64_t now = now_usec();
                if (now >= deadline) {
                        log_warning("cluster claims: %s/lock held by another process for %u ms: giving up this operation",
                                    d->dir, d->timeout_ms);
                        return -ETIMEDOUT;
                }
                /* 0.2 ms, doubling to 10 ms: a lock held for one claim's read-decide-write is free again at once */
                usleep((useconds_t) (pause < deadline - now ? pause : deadline - now));
                if (pause < 10000)
                        pause *= 2;
        }
}

static int lock_error(ClaimStore *cs, int r, KvErr *e) {
        if (r == -ETIMEDOUT)
                return kverr_set(e, KV_ERR_TRY_AGAIN, r,
                                 "cluster claims: '%s/lock' is held by another process for more than %u ms (timeoutMs)",
                                 D(cs)->dir, D(cs)->timeout_ms);
        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot lock '%s'", D(cs)->dir);
}

static void cs_unlock(ClaimStore *cs) {
        (void) flock(D(cs)->lock_fd, LOCK_UN);
}

/* ---- paths ---- */

static void record_path(ClaimStore *cs, const char *network, const char *key, char *buf, size_t n, char *fname,
                        size_t fn) {
        char f[IPAM_FNAME_MAX];
        ipam_claim_filename(network, key, f, sizeof f);
        snprintf(buf, n, "%s/claims/%s", D(cs)->dir, f);
        if (fname)
                snprintf(fname, fn, "%s", f);
}

/* DIR/KIND/<netdir>/ITEM: an index entry ("addrs": an address, "macs": a MAC), its content the owner's record
 * file name */
static int index_path(ClaimStore *cs, const char *kind, const char *network, const char *item, bool mkdir, char *buf,
                      size_t n) {
        char nd[128];
        ipam_netdir_name(network, nd, sizeof nd);
        if (mkdir) {
                snprintf(buf, n, "%s/%s/%s", D(cs)->dir, kind, nd);
                int r = mkdir_p(buf, 0700);
                if (r < 0)
                        return r;
        }
        snprintf(buf, n, "%s/%s/%s/%s", D(cs)->dir, kind, nd, item);
        return 0;
}

static int addr_path(ClaimStore *cs, const char *network, const KvAddr *a, bool mkdir, char *buf, size_t n) {
        char s[KV_ADDR_STRLEN];
        return index_path(cs, "addrs", network, kv_addr_fmt(a, s), mkdir, buf, n);
}

/* a MAC as a file name: 12 hex digits */
static int mac_path(ClaimStore *cs, const char *network, const uint8_t mac[6], bool mkdir, char *buf, size_t n) {
        char s[13];
        cs_mac_hex(mac, s);
        return index_path(cs, "macs", network, s, mkdir, buf, n);
}

/* ---- record (de)serialisation ---- */
static int record_read_path(const char *path, CsRecord *ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, CS_RECORD_MAX, &text, &len);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        if (!o || !json_is_object(o))
                return -EBADMSG;
        return claimstore_record_from_json(o, ret);
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
        return write_file_atomic(path, text, strlen(text), D(cs)->durable);
}

/* ---- address index ---- */

/* The record file name an index entry names, in *buf ("" when there is none). */
static int index_owner(const char *path, char *buf, size_t n) {
        buf[0] = '\0';
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, 1024, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
        snprintf(buf, n, "%s", text);
        return 0;
}

/* The record file name that holds address a, in *buf ("" when free). */
static int addr_owner(ClaimStore *cs, const char *network, const KvAddr *a, char *buf, size_t n) {
        char path[PATH_MAX];
        buf[0] = '\0';
        int r = addr_path(cs, network, a, false, path, sizeof path);
        return r < 0 ? r : index_owner(path, buf, n);
}

/* An address whose owner file no longer exists (a crash between the two writes) is free. */
static bool owner_alive(ClaimStore *cs, const char *fname) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/claims/%s", D(cs)->dir, fname);
        return access(path, F_OK) == 0;
}

static bool dir_addr_taken(ClaimStore *cs, const char *network, const KvAddr *a, const char *key) {
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
        return write_file_atomic(path, fname, strlen(fname), D(cs)->durable);
}

/* Removes the index entry at path if it names fname. */
static void index_clear(ClaimStore *cs, const char *path, const char *fname) {
        char owner[IPAM_FNAME_MAX];
        if (index_owner(path, owner, sizeof owner) < 0 || !streq(owner, fname))
                return;
        IGNORE_RESULT(unlink_durable(path, D(cs)->durable));
}

static void addr_clear(ClaimStore *cs, const char *network, const KvAddr *a, const char *fname) {
        char path[PATH_MAX];
        if (addr_path(cs, network, a, false, path, sizeof path) == 0)
                index_clear(cs, path, fname);
}

/* ---- MAC index: a MAC of a network is one claim's, cluster-wide (the all-zero MAC, "none", is not indexed) ---- */

static void mac_clear(ClaimStore *cs, const char *network, const uint8_t mac[6], const char *fname) {
        char path[PATH_MAX];
        if (!kv_mac_is_zero(mac) && mac_path(cs, network, mac, false, path, sizeof path) == 0)
                index_clear(cs, path, fname);
}

/* 0 when this MAC is free or fname's; KV_ERR_ADDRESS_IN_USE naming the claim that has it. An entry whose owner's
 * record is gone or holds another MAC (a crash between the writes) counts as free. */
static int mac_check(ClaimStore *cs, const char *network, const uint8_t mac[6], const char *fname, KvErr *e) {
        char path[PATH_MAX], owner[IPAM_FNAME_MAX], opath[PATH_MAX], m[KV_MAC_STRLEN];
        int r = mac_path(cs, network, mac, false, path, sizeof path);
        if (r >= 0)
                r = index_owner(path, owner, sizeof owner);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot read MAC %s", kv_mac_fmt(mac, m));
        if (!owner[0] || streq(owner, fname))
                return 0;
        CsRecord other = {};
        snprintf(opath, sizeof opath, "%s/claims/%s", D(cs)->dir, owner);
        if (record_read_path(opath, &other) < 0 || memcmp(other.mac, mac, 6) != 0)
                return 0;
        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                         "cluster claims: MAC %s in network '%s' is held by '%s' on node '%s'", kv_mac_fmt(mac, m),
                         network, other.key, other.holder[0] ? other.holder : "?");
}

static int mac_set(ClaimStore *cs, const char *network, const uint8_t mac[6], const char *fname) {
        char path[PATH_MAX];
        int r = mac_path(cs, network, mac, true, path, sizeof path);
        if (r < 0)
                return r;
        return write_file_atomic(path, fname, strlen(fname), D(cs)->durable);
}

static int record_delete(ClaimStore *cs, const CsRecord *rec) {
        char path[PATH_MAX], fname[IPAM_FNAME_MAX];
        record_path(cs, rec->network, rec->key, path, sizeof path, fname, sizeof fname);
        for (size_t i = 0; i < rec->n_addrs; i++)
                addr_clear(cs, rec->network, &rec->addrs[i].addr, fname);
        mac_clear(cs, rec->network, rec->mac, fname);
        int r = unlink_durable(path, D(cs)->durable);
        return r == -ENOENT ? 0 : r;
}

/* ---- operations ---- */

static int dir_get(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) {
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
        CsRecord old = {};
        int found = record_read(cs, network, key, &old);
        if (found < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, found, "cluster claims: cannot read the claim of '%s'", key);
        int r = cs_take_check(cs, &old, found > 0, network, key, e);
        if (r < 0)
                return r;
        record_path(cs, network, key, path, sizeof path, fname, sizeof fname);
        for (size_t i = 0; i < n_addrs; i++) {
                r = addr_owner(cs, network, &addrs[i].addr, owner, sizeof owner);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot read address %s",
                                               kv_addr_fmt(&addrs[i].addr, a));
                if (owner[0] && !streq(owner, fname) && owner_alive(cs, owner)) {
                        CsRecord other = {};
                        char opath[PATH_MAX];
                        snprintf(opath, sizeof opath, "%s/claims/%s", D(cs)->dir, owner);
                        bool known = record_read_path(opath, &other) == 0;
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "cluster claims: address %s in network '%s' is held by '%s' on node '%s'",
                                         kv_addr_fmt(&addrs[i].addr, a), network, known ? other.key : owner,
                                         known ? other.holder : "?");
                }
        }
        if (!kv_mac_is_zero(mac) && (r = mac_check(cs, network, mac, fname, e)) < 0)
                return r;
        CsRecord rec;
        cs_take_record(cs, &old, found > 0, network, key, addrs, n_addrs, mac, &rec);
        /* Addresses and MAC first: a crash before the record leaves index entries whose owner file is missing or
         * does not list them, which count as free (owner_alive, mac_check) or are rewritten by the next take. */
        char m[KV_MAC_STRLEN];
        if (!kv_mac_is_zero(mac) && (r = mac_set(cs, network, mac, fname)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot record MAC %s",
                                       kv_mac_fmt(mac, m));
        for (size_t i = 0; i < n_addrs; i++) {
                r = addr_set(cs, network, &addrs[i].addr, fname);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot record address %s",
                                               kv_addr_fmt(&addrs[i].addr, a));
        }
        r = record_write(cs, &rec);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "cluster claims: cannot write '%s'", path);
        for (size_t i = 0; found && i < old.n_addrs; i++)
                if (!cs_has_addr(addrs, n_addrs, &old.addrs[i].addr))
                        addr_clear(cs, network, &old.addrs[i].addr, fname);
        if (found && memcmp(old.mac, mac, 6) != 0)
                mac_clear(cs, network, old.mac, fname);
        return 0;
}

static int dir_take(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                    const uint8_t mac[6], KvErr *e) {
        int r = cs_lock(cs);
        if (r < 0)
                return lock_error(cs, r, e);
        r = take_locked(cs, network, key, addrs, n_addrs, mac, e);
        cs_unlock(cs);
        return r;
}

/* One read-decide-write step under the lock (claimstore-priv.h). */
static int dir_update(ClaimStore *cs, const char *network, const char *key, cs_decide_fn decide, KvErr *e) {
        int r = cs_lock(cs);
        if (r < 0)
                return lock_error(cs, r, e);
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

/* ---- node registry ---- */

static int dir_set_node_address(ClaimStore *cs, const KvAddr *a) {
        char p[PATH_MAX], s[KV_ADDR_STRLEN];
        snprintf(p, sizeof p, "%s/nodes", D(cs)->dir);
        int r = mkdir_p(p, 0700);
        if (r < 0)
                return r;
        snprintf(p, sizeof p, "%s/nodes/%s.json", D(cs)->dir, cs->node);
        _cleanup_json_ json_t *o = json_pack("{s:s,s:s}", "node", cs->node, "address", kv_addr_fmt(a, s));
        _cleanup_free_ char *text = o ? json_dump_compact(o) : NULL;
        if (!text)
                return -ENOMEM;
        return write_file_atomic(p, text, strlen(text), D(cs)->durable);
}

static int dir_node_address(ClaimStore *cs, const char *node, KvAddr *ret) {
        char p[PATH_MAX];
        if (!claimstore_node_name_ok(node))
                return -EINVAL;
        snprintf(p, sizeof p, "%s/nodes/%s.json", D(cs)->dir, node);
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

static int dir_foreach(ClaimStore *cs, claimstore_cb cb, void *userdata) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/claims", D(cs)->dir);
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
                snprintf(p, sizeof p, "%s/claims/%.*s", D(cs)->dir, IPAM_FNAME_MAX, de->d_name);
                CsRecord rec;
                if (record_read_path(p, &rec) < 0)
                        continue;
                r = cb(&rec, userdata);
        }
        closedir(d);
        cs_unlock(cs);
        return r < 0 ? r : 0;
}

static int dir_describe(ClaimStore *cs, json_t *dump) {
        return json_object_set_new(dump, "dir", json_string(D(cs)->dir)) < 0 ? -ENOMEM : 0;
}

const ClaimStoreOps claimstore_dir_ops = {
        .done = dir_done,
        .get = dir_get,
        .addr_taken = dir_addr_taken,
        .take = dir_take,
        .update = dir_update,
        .set_node_address = dir_set_node_address,
        .node_address = dir_node_address,
        .foreach = dir_foreach,
        .describe = dir_describe,
};
