/* SPDX-License-Identifier: Apache-2.0 */
/* IPAM persistence: state_dir/ipam/<netdir>/pool.json per pool, every claim in the journal
 * state_dir/ipam/claims.journal (key "<netdir>/<claim name>"). Claim files of the earlier layout
 * (<netdir>/claims/<name>.json) are imported at load and deleted. Knows nothing of IPAM's internals
 * (netd/ipam/store.h). */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/ipam/store.h"

#define IPAM_FILE_MAX (1024 * 1024)
#define IPAM_FILE_VERSION 1

/* ---- records ---- */

const char *ipam_claim_state_to_string(IpamClaimState st) {
        switch (st) {
        case IPAM_CLAIM_ACTIVE: return "active";
        case IPAM_CLAIM_IDLE: return "idle";
        case IPAM_CLAIM_MIGRATING: return "migrating";
        }
        return "unknown";
}

int ipam_claim_state_from_string(const char *s, IpamClaimState *ret) {
        if (streq_ptr(s, "active"))
                *ret = IPAM_CLAIM_ACTIVE;
        else if (streq_ptr(s, "idle"))
                *ret = IPAM_CLAIM_IDLE;
        else if (streq_ptr(s, "migrating"))
                *ret = IPAM_CLAIM_MIGRATING;
        else
                return -EINVAL;
        return 0;
}

json_t *ipam_claim_to_json(const IpamClaim *c) {
        char b[KV_ADDR_STRLEN], mb[KV_MAC_STRLEN];
        _cleanup_json_ json_t *ips = json_array(), *gws = json_array();
        if (!ips || !gws)
                return NULL;
        for (size_t k = 0; k < c->n_addrs; k++) {
                if (json_array_append_new(ips, json_string(kv_prefix_fmt(&c->addrs[k], b))) < 0 ||
                    json_array_append_new(gws, c->has_gateway[k] ? json_string(kv_addr_fmt(&c->gateways[k], b))
                                                                 : json_null()) < 0)
                        return NULL;
        }
        return json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:I, s:I}", "network", c->network, "key", c->key,
                         "ips", TAKE_PTR(ips), "gateways", TAKE_PTR(gws), "mac", kv_mac_fmt(c->mac, mb), "state",
                         ipam_claim_state_to_string(c->state), "owner", c->owner, "created",
                         (json_int_t) c->created_usec, "updated", (json_int_t) c->updated_usec);
}

/* ---- names ---- */

static bool safe_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '.' || ch == '-';
}

static bool safe_alnum(char ch) {
        return safe_char(ch) && ch != '_' && ch != '.' && ch != '-';
}

/* First max chars of s with unsafe characters replaced by '_' and no leading dot. */
static void sanitize(const char *s, size_t max, char *buf, size_t len) {
        size_t n = 0;
        for (; s[n] && n < max && n + 1 < len; n++)
                buf[n] = safe_char(s[n]) ? s[n] : '_';
        buf[n] = '\0';
        if (buf[0] == '.')
                buf[0] = '_';
}

void ipam_netdir_name(const char *network, char *buf, size_t len) {
        size_t n = strlen(network);
        bool safe = n > 0 && n <= 64 && safe_alnum(network[0]);
        for (size_t k = 0; safe && k < n; k++)
                safe = safe_char(network[k]);
        if (safe) {
                snprintf(buf, len, "%s", network);
                return;
        }
        char pre[40];
        sanitize(network, 32, pre, sizeof pre);
        snprintf(buf, len, "%s-%016llx", pre, (unsigned long long) kv_hash64(network, n));
}

int ipam_pool_dir(const IpamStore *st, const char *network, char *buf, size_t len) {
        char name[128];
        ipam_netdir_name(network, name, sizeof name);
        if (snprintf(buf, len, "%s/%s", st->dir, name) >= (int) len)
                return -ENAMETOOLONG;
        return 0;
}

void ipam_claim_filename(const char *network, const char *key, char *buf, size_t len) {
        char pre[56];
        size_t nn = strlen(network), kn = strlen(key);
        _cleanup_free_ char *both = malloc(nn + 1 + kn);
        uint64_t h;
        if (both) {
                memcpy(both, network, nn + 1);
                memcpy(both + nn + 1, key, kn);
                h = kv_hash64(both, nn + 1 + kn);
        } else
                h = kv_hash64(key, kn) ^ kv_hash64(network, nn);
        sanitize(key, 48, pre, sizeof pre);
        snprintf(buf, len, "%s-%016llx.json", pre, (unsigned long long) h);
}

static int claim_jkey(const char *pool_dir, const char *fname, char *buf, size_t len);

static int write_json(const char *path, json_t *o, bool durable) {
        size_t n;
        _cleanup_free_ char *line = json_dump_line(o, &n);
        if (!line)
                return -ENOMEM;
        return write_file_atomic(path, line, n, durable);
}

int ipam_store_pool(const IpamStore *st, const char *network, const char *dir, const IpamConfig *cfg) {
        char path[PATH_MAX];
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        json_t *c = ipam_config_to_json(cfg);
        if (!c)
                return -ENOMEM;
        _cleanup_json_ json_t *o =
                json_pack("{s:i, s:s, s:o}", "version", IPAM_FILE_VERSION, "network", network, "config", c);
        if (!o)
                return -ENOMEM;
        if (snprintf(path, sizeof path, "%s/pool.json", dir) >= (int) sizeof path)
                return -ENAMETOOLONG;
        return write_json(path, o, st->durable);
}

int ipam_store_claim(const IpamStore *st, const char *pool_dir, const char *fname, const IpamClaim *c) {
        char key[PATH_MAX];
        int r = claim_jkey(pool_dir, fname, key, sizeof key);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_pack("{s:i}", "version", IPAM_FILE_VERSION);
        json_t *co = ipam_claim_to_json(c);
        if (!o || !co || json_object_update(o, co) < 0) {
                json_decref(co);
                return -ENOMEM;
        }
        json_decref(co);
        return journal_put(st->journal, key, o, st->durable);
}

int ipam_unstore_claim(const IpamStore *st, const char *pool_dir, const char *fname) {
        char key[PATH_MAX];
        int r = claim_jkey(pool_dir, fname, key, sizeof key);
        if (r < 0)
                return r;
        r = journal_del(st->journal, key, st->durable);
        return r < 0 ? r : 0;
}

int ipam_claim_from_json(json_t *o, const char *ctx, IpamClaim *ret, KvErr *e) {
        IpamClaim c = {};
        const char *s = NULL;
        json_t *ips = NULL, *gws = NULL;
        long long t = 0;
        int r;

        if ((r = json_get_string(o, ctx, "network", true, &s, e)) < 0)
                return r;
        if (!*s || strlen(s) >= sizeof c.network)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'network' must be 1..%zu characters", ctx,
                                 sizeof c.network - 1);
        strcpy(c.network, s);
        if ((r = json_get_string(o, ctx, "key", true, &s, e)) < 0)
                return r;
        if (!*s || strlen(s) >= sizeof c.key)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'key' must be 1..%zu characters", ctx,
                                 sizeof c.key - 1);
        strcpy(c.key, s);
        if ((r = json_get_array(o, ctx, "ips", true, &ips, e)) < 0 ||
            (r = json_get_array(o, ctx, "gateways", true, &gws, e)) < 0)
                return r;
        if (json_array_size(ips) == 0 || json_array_size(ips) > IPAM_MAX_SETS ||
            json_array_size(gws) != json_array_size(ips))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                 "%s: 'ips' must hold 1..%d addresses and 'gateways' as many entries", ctx,
                                 IPAM_MAX_SETS);
        for (size_t k = 0; k < json_array_size(ips); k++) {
                json_t *v = json_array_get(ips, k), *g = json_array_get(gws, k);
                if (!json_is_string(v) || kv_prefix_parse(json_string_value(v), &c.addrs[k]) < 0)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: ips[%zu] is not an address/prefix", ctx, k);
                if (json_is_string(g)) {
                        if (kv_addr_parse(json_string_value(g), &c.gateways[k]) < 0)
                                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: gateways[%zu]: '%s' is not an address",
                                                 ctx, k, json_string_value(g));
                        c.has_gateway[k] = true;
                } else if (!json_is_null(g))
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: gateways[%zu] must be a string or null", ctx,
                                         k);
        }
        c.n_addrs = json_array_size(ips);
        if ((r = json_get_string(o, ctx, "mac", true, &s, e)) < 0)
                return r;
        if (kv_mac_parse(s, c.mac) < 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'mac': '%s' is not a MAC address", ctx, s);
        if ((r = json_get_string(o, ctx, "state", true, &s, e)) < 0)
                return r;
        if (ipam_claim_state_from_string(s, &c.state) < 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'state': '%s' is not active|idle|migrating", ctx, s);
        s = "";
        if ((r = json_get_string(o, ctx, "owner", false, &s, e)) < 0)
                return r;
        if (strlen(s) >= sizeof c.owner)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'owner' is too long", ctx);
        strcpy(c.owner, s);
        if ((r = json_get_int(o, ctx, "created", true, 0, INT64_MAX, &t, e)) < 0)
                return r;
        c.created_usec = (uint64_t) t;
        if ((r = json_get_int(o, ctx, "updated", true, 0, INT64_MAX, &t, e)) < 0)
                return r;
        c.updated_usec = (uint64_t) t;
        *ret = c;
        return 0;
}

/* ---- loading ---- */

static int warn(const IpamStoreLoader *l, const char *path, const char *fmt, ...) _printf_(3, 4);
static int warn(const IpamStoreLoader *l, const char *path, const char *fmt, ...) {
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return l->warning(path, msg, l->userdata);
}

static int read_json_file(const char *path, json_t **ret, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_max(path, IPAM_FILE_MAX, &text, &len);
        if (r < 0) {
                snprintf(err, errlen, "cannot read: %s", strerror(-r));
                return r;
        }
        KvErr e = {};
        r = json_parse_object(text, len, IPAM_FILE_MAX, "file", ret, &e);
        if (r < 0)
                snprintf(err, errlen, "%s", e.msg);
        return r;
}

static bool is_tmp_name(const char *name) {
        return strstr(name, ".tmp.") != NULL;
}

/* Reads pool.json. 1 with ret_network and ret_cfg filled, 0 if absent, < 0 if unusable (warned). */
static int load_pool_file(const IpamStoreLoader *i, const char *dir, const char *dname, char *ret_network, IpamConfig *ret_cfg) {
        char path[PATH_MAX], err[600], expect[128];
        if (snprintf(path, sizeof path, "%s/pool.json", dir) >= (int) sizeof path)
                return 0;
        if (access(path, F_OK) < 0 && errno == ENOENT)
                return 0;
        _cleanup_json_ json_t *o = NULL;
        int r = read_json_file(path, &o, err, sizeof err);
        if (r < 0)
                return warn(i, path, "%s", err) < 0 ? -ENOMEM : -EINVAL;
        KvErr e = {};
        const char *network = NULL;
        json_t *cfg = NULL;
        if (json_get_string(o, "pool.json", "network", true, &network, &e) < 0 ||
            json_get_object(o, "pool.json", "config", true, &cfg, &e) < 0 ||
            ipam_config_parse(cfg, "pool.json config", ret_cfg, &e) < 0)
                return warn(i, path, "%s", e.msg) < 0 ? -ENOMEM : -EINVAL;
        if (!*network || strlen(network) >= IPAM_NETWORK_MAX)
                return warn(i, path, "network name '%.64s' must be 1..%d characters", network, IPAM_NETWORK_MAX - 1) <
                                       0
                               ? -ENOMEM
                               : -EINVAL;
        ipam_netdir_name(network, expect, sizeof expect);
        if (!streq(expect, dname))
                return warn(i, path, "names network '%s', whose directory is '%s'", network, expect) < 0 ? -ENOMEM
                                                                                                         : -EINVAL;
        strcpy(ret_network, network);
        return 1;
}

/* Key of a claim in the claims journal: "<network directory name>/<claim file name>". */
static int claim_jkey(const char *pool_dir, const char *fname, char *buf, size_t len) {
        const char *slash = strrchr(pool_dir, '/');
        if (snprintf(buf, len, "%s/%s", slash ? slash + 1 : pool_dir, fname) >= (int) len)
                return -ENAMETOOLONG;
        return 0;
}

/* Validates one stored claim and hands it to the loader: 1 taken, 0 skipped (warned as `where`), < 0 fatal.
 * The pool directory name dname must be the one its network maps to. */
static int load_claim(const IpamStore *st, const IpamStoreLoader *l, const char *dname, const char *fname,
                      json_t *o, const char *where, IpamClaim *ret) {
        char expect[128], dir[PATH_MAX], why[768] = "";
        KvErr e = {};
        IpamClaim c;
        if (strlen(fname) >= IPAM_FNAME_MAX)
                return warn(l, where, "name too long");
        if (ipam_claim_from_json(o, "claim", &c, &e) < 0)
                return warn(l, where, "%s", e.msg);
        ipam_netdir_name(c.network, expect, sizeof expect);
        if (!streq(expect, dname))
                return warn(l, where, "claim of network '%s', whose directory is '%s', found under '%s'", c.network,
                            expect, dname);
        bool dir_ok = snprintf(dir, sizeof dir, "%s/%s", st->dir, dname) < (int) sizeof dir;
        int r = l->claim(&c, dir_ok ? dir : NULL, fname, why, sizeof why, l->userdata);
        if (r == 0)
                return warn(l, where, "%s", why);
        if (r > 0 && ret)
                *ret = c;
        return r;
}

/* pool.json of one pool directory. */
static int load_pool_config(const IpamStore *st, const IpamStoreLoader *l, const char *dname, int *skipped) {
        char dir[PATH_MAX], network[IPAM_NETWORK_MAX] = "";
        _cleanup_free_ IpamConfig *cfg = calloc(1, sizeof *cfg);
        if (!cfg)
                return -ENOMEM;
        if (snprintf(dir, sizeof dir, "%s/%s", st->dir, dname) >= (int) sizeof dir)
                return 0;
        int r = load_pool_file(l, dir, dname, network, cfg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                (*skipped)++;
        if (r <= 0)
                return 0;
        return l->pool(network, dir, cfg, l->userdata);
}

typedef struct LoadCtx {
        const IpamStore *st;
        const IpamStoreLoader *l;
        int skipped;
} LoadCtx;

static int load_journal_claim(const char *key, json_t *val, void *userdata) {
        LoadCtx *ctx = userdata;
        char dname[128], where[PATH_MAX + 300];
        const char *slash = strchr(key, '/');
        snprintf(where, sizeof where, "%s record '%s'", journal_path(ctx->st->journal), key);
        if (!slash || (size_t) (slash - key) >= sizeof dname) {
                int r = warn(ctx->l, where, "key is not <network>/<name>");
                ctx->skipped++;
                return r;
        }
        memcpy(dname, key, (size_t) (slash - key));
        dname[slash - key] = '\0';
        int r = load_claim(ctx->st, ctx->l, dname, slash + 1, val, where, NULL);
        if (r == 0)
                ctx->skipped++;
        return r < 0 ? r : 0;
}

typedef struct ImportCtx {
        const IpamStore *st;
        const IpamStoreLoader *l;
        const char *dname;
        const char *pool_dir; /* <ipam dir>/<dname> */
        int skipped;
} ImportCtx;

static int import_claim_file(const char *path, const char *fname, json_t *o, const char *err, void *userdata) {
        ImportCtx *ctx = userdata;
        char jkey[PATH_MAX];
        if (!o) {
                ctx->skipped++;
                return warn(ctx->l, path, "%s", err);
        }
        if (snprintf(jkey, sizeof jkey, "%s/%s", ctx->dname, fname) < (int) sizeof jkey &&
            journal_get(ctx->st->journal, jkey))
                return 1; /* imported before a crash; the journal has it */
        IpamClaim c;
        int r = load_claim(ctx->st, ctx->l, ctx->dname, fname, o, path, &c);
        if (r == 0)
                ctx->skipped++;
        if (r <= 0)
                return r;
        r = ipam_store_claim(ctx->st, ctx->pool_dir, fname, &c);
        return r < 0 ? r : 1;
}

/* Claim files of the layout before the journal (<dir>/claims/<name>.json): claims the journal does not have yet
 * are added and written to it; the files are deleted once the journal holds them durably. Files that cannot be
 * used stay, warned. */
static int import_claim_files(const IpamStore *st, const IpamStoreLoader *l, const char *dname, int *skipped) {
        char cdir[PATH_MAX], pdir[PATH_MAX];
        if (snprintf(cdir, sizeof cdir, "%s/%s/claims", st->dir, dname) >= (int) sizeof cdir)
                return 0;
        if (snprintf(pdir, sizeof pdir, "%s/%s", st->dir, dname) >= (int) sizeof pdir)
                return 0; /* not reached: shorter than cdir */
        ImportCtx ctx = { .st = st, .l = l, .dname = dname, .pool_dir = pdir };
        int r = journal_import_files(st->journal, cdir, IPAM_FILE_MAX, import_claim_file, &ctx);
        *skipped += ctx.skipped;
        return r < 0 ? r : 0;
}

static int pool_dir_filter(const struct dirent *d) {
        return d->d_name[0] != '.' && !is_tmp_name(d->d_name);
}

int ipam_store_load(const IpamStore *st, const IpamStoreLoader *l, KvErr *e) {
        struct dirent **names = NULL;
        int n = scandir(st->dir, &names, pool_dir_filter, alphasort);
        if (n < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "ipam: cannot read state directory %s",
                                       st->dir);
        LoadCtx ctx = { .st = st, .l = l };
        int r = 0;
        bool *is_dir = calloc((size_t) n + 1, sizeof *is_dir);
        if (!is_dir)
                r = -ENOMEM;
        for (int k = 0; k < n && r >= 0; k++) {
                char path[PATH_MAX];
                struct stat sb;
                is_dir[k] = snprintf(path, sizeof path, "%s/%s", st->dir, names[k]->d_name) < (int) sizeof path &&
                            stat(path, &sb) >= 0 && S_ISDIR(sb.st_mode);
                if (is_dir[k])
                        r = load_pool_config(st, l, names[k]->d_name, &ctx.skipped);
        }
        if (r >= 0)
                r = journal_foreach(st->journal, load_journal_claim, &ctx);
        for (int k = 0; k < n && r >= 0; k++)
                if (is_dir[k])
                        r = import_claim_files(st, l, names[k]->d_name, &ctx.skipped);
        for (int k = 0; k < n; k++)
                free(names[k]);
        free(names);
        free(is_dir);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "ipam: loading state from %s", st->dir);
        return ctx.skipped;
}
