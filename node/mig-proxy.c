/* SPDX-License-Identifier: Apache-2.0 */
/* The migration proxies of KubeVirt's virt-handler, owned by the pod runtime: the source pod's libvirtd
 * dials /run/libvirt/kvnet-migration-ctl.sock (and QEMU, for a direct migration, kvnet-migration.sock) in
 * its own mount namespace; a socat in the source node's namespace listens there and forwards over the
 * underlay to a socat in the target node's namespace, which connects to the target pod's libvirt-sock
 * (kvnet-migration.sock). The pods' sockets are reached through /proc/<libvirtd pid>/root, so their
 * paths stay short however deep the pod directories are. socat is Debian's (package socat). */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "node/pod-priv.h"

#define PROXIES_FILE "proxies.json"
#define SOCAT_BUF "262144"
#define SOCAT "/usr/bin/socat"

typedef struct Pair {
        char *src_sock; /* the listening socket in the source pod */
        NodeProc src, dst;
} Pair;

struct NodeMigProxies {
        Pair pairs[2];
        size_t n_pairs;
        char *src_dir, *dst_dir;
        char *dest_uri, *migrate_uri;
        uint16_t port;
};

/* <dir>/proxies.json: the processes of this pod's side, for node_mig_proxies_reap(). */
static int record_write(const char *dir, const NodeProc *procs, size_t n, const char *const *socks, size_t n_socks) {
        _cleanup_json_ json_t *arr = json_array(), *sa = json_array();
        if (!arr || !sa)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (procs[i].pid > 0 && json_array_append_new(arr, json_pack("{s:i, s:I}", "pid", (int) procs[i].pid,
                                                                             "startTime", (json_int_t) procs[i].start_time)) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < n_socks; i++)
                if (json_array_append_new(sa, json_string(socks[i])) < 0)
                        return -ENOMEM;
        _cleanup_json_ json_t *o = json_pack("{s:O, s:O}", "processes", arr, "sockets", sa);
        _cleanup_free_ char *s = o ? json_dump_compact(o) : NULL, *path = NULL;
        if (!s || asprintf(&path, "%s/%s", dir, PROXIES_FILE) < 0)
                return -ENOMEM;
        return write_file_atomic(path, s, strlen(s), true);
}

int node_mig_proxies_reap(const NodePod *p) {
        if (!p->dir)
                return 0;
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s", p->dir, PROXIES_FILE) < 0)
                return -ENOMEM;
        size_t len;
        int r = read_file_max(path, 65536, &text, &len);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, &jerr);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(o, "processes"), i, v) {
                json_t *pid = json_object_get(v, "pid"), *st = json_object_get(v, "startTime");
                if (!json_is_integer(pid) || !json_is_integer(st) || json_integer_value(pid) <= 0 ||
                    json_integer_value(pid) > INT32_MAX)
                        continue;
                NodeProc pr = { .pid = (pid_t) json_integer_value(pid),
                                .start_time = (unsigned long long) json_integer_value(st) };
                (void) node_proc_stop(&pr, 2000, true); /* socat forks per connection */
        }
        json_array_foreach(json_object_get(o, "sockets"), i, v) {
                const char *s = json_string_value(v);
                /* only a proxy's socket of a pod's libvirt run dir */
                if (s && strncmp(s, "/proc/", 6) == 0 && strstr(s, "/root/run/libvirt/kvnet-migration"))
                        (void) unlink(s);
        }
        (void) unlink(path);
        return 0;
}

int node_pod_proxies_stop(const NodePod *p) {
        return node_mig_proxies_reap(p);
}

static void pair_stop(Pair *pp) {
        /* the listeners and the children they forked per connection */
        (void) node_proc_stop(&pp->src, 2000, true);
        (void) node_proc_stop(&pp->dst, 2000, true);
        if (pp->src_sock)
                (void) unlink(pp->src_sock);
        free(pp->src_sock);
        *pp = (Pair) { 0 };
}

int node_mig_proxies_stop(NodeMigProxies *p) {
        if (!p)
                return 0;
        for (size_t i = 0; i < p->n_pairs; i++)
                pair_stop(&p->pairs[i]);
        p->n_pairs = 0;
        _cleanup_free_ char *a = NULL, *b = NULL;
        if (p->src_dir && asprintf(&a, "%s/%s", p->src_dir, PROXIES_FILE) >= 0)
                (void) unlink(a);
        if (p->dst_dir && asprintf(&b, "%s/%s", p->dst_dir, PROXIES_FILE) >= 0)
                (void) unlink(b);
        return 0;
}

NodeMigProxies *node_mig_proxies_free(NodeMigProxies *p) {
        if (!p)
                return NULL;
        (void) node_mig_proxies_stop(p);
        free(p->src_dir);
        free(p->dst_dir);
        free(p->dest_uri);
        free(p->migrate_uri);
        free(p);
        return NULL;
}

NodeMigProxies *node_mig_proxies_forget(NodeMigProxies *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_pairs; i++)
                free(p->pairs[i].src_sock);
        p->n_pairs = 0;
        free(p->src_dir);
        free(p->dst_dir);
        p->src_dir = p->dst_dir = NULL;
        return node_mig_proxies_free(p);
}

const char *node_mig_proxies_dest_uri(const NodeMigProxies *p) {
        return p->dest_uri;
}

const char *node_mig_proxies_migrate_uri(const NodeMigProxies *p) {
        return p->migrate_uri;
}

uint16_t node_mig_proxies_port(const NodeMigProxies *p) {
        return p->port;
}

static bool sock_exists(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Whether the process listens on TCP port (in its own network namespace: /proc/PID/net/tcp{,6}). */
static bool listens(pid_t pid, uint16_t port) {
        char want[16];
        snprintf(want, sizeof want, ":%04X", port);
        for (int v6 = 0; v6 < 2; v6++) {
                char path[64], line[512];
                snprintf(path, sizeof path, "/proc/%d/net/tcp%s", (int) pid, v6 ? "6" : "");
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                while (fgets(line, sizeof line, f)) {
                        char local[64], remote[64], st[8];
                        /* "  sl  local_address rem_address   st ..." */
                        if (sscanf(line, "%*s %63s %63s %7s", local, remote, st) != 3 || !streq(st, "0A"))
                                continue;
                        const char *colon = strrchr(local, ':');
                        if (colon && streq(colon, want))
                                return true;
                }
        }
        return false;
}

/* socat's TLS options for this node's end: its certificate and key, the CA the other end must chain to (and
 * verify=1: the other end must present one). NULL without TLS. */
static char *tls_opts(const NodePodRuntime *rt) {
        char *o = NULL;
        if (rt->mig_tls && asprintf(&o, ",cert=%s/node.pem,key=%s/node-key.pem,cafile=%s/ca.pem,verify=1", rt->mig_tls,
                                    rt->mig_tls, rt->mig_tls) < 0)
                o = NULL;
        return o;
}

static bool ip_literal(const char *a) {
        return a && *a && strlen(a) < 64 && strspn(a, "0123456789abcdefABCDEF.:") == strlen(a);
}

/* The target's half of one pair: a listener on address:port in the target node's namespace that connects to
 * the target pod's socket dst_name. -EADDRINUSE when the port is taken. */
static int target_pair(NodePodRuntime *rt, const NodePod *target, const char *address, uint16_t port,
                       const char *dst_name, NodeProc *ret, NodeErr *e) {
        _cleanup_free_ char *dst_sock = NULL, *listen = NULL, *unix_connect = NULL, *log = NULL;
        int r = node_libvirtd_sock(target, dst_name, &dst_sock, e);
        if (r < 0)
                return r;
        bool v6 = strchr(address, ':');
        _cleanup_free_ char *tls = tls_opts(rt);
        if (rt->mig_tls && !tls)
                return -ENOMEM;
        /* with TLS: a caller without a certificate of the cluster's migration CA never reaches the pod's libvirtd */
        if (asprintf(&listen, "%s:%u,bind=%s%s%s,reuseaddr,fork,nodelay%s%s",
                     tls ? "OPENSSL-LISTEN" : v6 ? "TCP6-LISTEN" : "TCP-LISTEN", port, v6 ? "[" : "", address,
                     v6 ? "]" : "", tls && v6 ? ",pf=ip6" : "", tls ? tls : "") < 0 ||
            asprintf(&unix_connect, "UNIX-CONNECT:%s", dst_sock) < 0 || asprintf(&log, "%s/proxy.log", target->dir) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) SOCAT, (char *) "-b", (char *) SOCAT_BUF, listen, unix_connect, NULL };
        if ((r = node_spawn_in_netns(rt->node_netns, log, argv, ret)) < 0)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "migration proxy on node %s (port %u)",
                                    rt->node_name, port);
        for (int i = 0; i < 100; i++) {
                if (listens(ret->pid, port))
                        return 0;
                if (!node_proc_alive(ret))
                        return -EADDRINUSE; /* socat's bind failed (its log says why) */
                (void) usleep(20 * 1000);
        }
        (void) node_proc_stop(ret, 2000, true);
        return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, -EIO, "migration proxy on node %s: no listener on %s:%u (%s)",
                            rt->node_name, address, port, log);
}

/* The source's half of one pair: a listener on the source pod's socket src_name that connects to
 * address:port from the source node's namespace. */
static int source_pair(NodePodRuntime *rt, const NodePod *source, const char *address, uint16_t port,
                       const char *src_name, Pair *pp, NodeErr *e) {
        _cleanup_free_ char *src_sock = NULL, *unix_listen = NULL, *connect = NULL, *log = NULL;
        int r = node_libvirtd_sock(source, src_name, &src_sock, e);
        if (r < 0)
                return r;
        bool v6 = strchr(address, ':');
        _cleanup_free_ char *tls = tls_opts(rt);
        if (rt->mig_tls && !tls)
                return -ENOMEM;
        /* with TLS the target must present a certificate of the cluster's migration CA naming the address dialled */
        if (asprintf(&unix_listen, "UNIX-LISTEN:%s,fork", src_sock) < 0 ||
            asprintf(&connect, "%s:%s%s%s:%u,nodelay%s%s", tls ? "OPENSSL" : v6 ? "TCP6" : "TCP", v6 ? "[" : "", address,
                     v6 ? "]" : "", port, tls && v6 ? ",pf=ip6" : "", tls ? tls : "") < 0 ||
            asprintf(&log, "%s/proxy.log", source->dir) < 0)
                return -ENOMEM;
        char *argv[] = { (char *) SOCAT, (char *) "-b", (char *) SOCAT_BUF, unix_listen, connect, NULL };
        (void) unlink(src_sock); /* a socket left by an earlier proxy */
        if ((r = node_spawn_in_netns(rt->node_netns, log, argv, &pp->src)) < 0)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "migration proxy on node %s ('%s')",
                                    rt->node_name, src_sock);
        pp->src_sock = TAKE_PTR(src_sock);
        for (int i = 0; i < 100; i++) {
                if (sock_exists(pp->src_sock))
                        return 0;
                if (!node_proc_alive(&pp->src))
                        break;
                (void) usleep(50 * 1000);
        }
        return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, -EIO,
                            "migration proxy %s -> %s:%u did not come up (socat's log: %s)", pp->src_sock, address,
                            port, log);
}

static int check_args(const char *address, uint16_t port, bool direct, bool any_port, NodeErr *e) {
        if (!ip_literal(address))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "migration proxies: the target address must be an IP literal, got '%.80s'",
                                    address ? address : "(null)");
        if ((port == 0 && !any_port) || (direct && port == UINT16_MAX))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "migration proxies: 'port' must be 1..%u, got %u",
                                    direct ? UINT16_MAX - 1 : UINT16_MAX, port);
        return 0;
}

static int record(NodeMigProxies *p, const char *dir, bool source, NodeErr *e) {
        NodeProc procs[2];
        const char *socks[2];
        for (size_t i = 0; i < p->n_pairs; i++) {
                procs[i] = source ? p->pairs[i].src : p->pairs[i].dst;
                socks[i] = p->pairs[i].src_sock;
        }
        int r = record_write(dir, procs, p->n_pairs, socks, source ? p->n_pairs : 0);
        return r < 0 ? node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "recording the migration proxies") : 0;
}

/* The target half's port pairs when none is given: from a range, starting at one the pod's uid picks. */
#define AUTO_PORT_BASE 20000u
#define AUTO_PORT_SPAN 20000u
#define AUTO_PORT_TRIES 16

int node_mig_target_start(NodePodRuntime *rt, const NodePod *target, const char *address, uint16_t port, bool direct,
                          NodeMigProxies **ret, NodeErr *e) {
        int r = check_args(address, port, direct, true, e);
        if (r < 0)
                return r;
        _cleanup_(node_mig_proxies_freep) NodeMigProxies *p = calloc(1, sizeof *p);
        if (!p || !(p->dst_dir = strdup(target->dir)))
                return -ENOMEM;
        unsigned h = 5381;
        for (const char *c = target->uid; *c; c++)
                h = h * 33u + (unsigned char) *c;
        for (int t = 0; t < (port ? 1 : AUTO_PORT_TRIES); t++) {
                uint16_t at = port ? port : (uint16_t) (AUTO_PORT_BASE + ((h + (unsigned) t * 7919u) % AUTO_PORT_SPAN) / 2 * 2);
                p->n_pairs = 0;
                r = target_pair(rt, target, address, at, "libvirt-sock", &p->pairs[0].dst, e);
                if (r >= 0) {
                        p->n_pairs = 1;
                        if (direct) {
                                r = target_pair(rt, target, address, (uint16_t) (at + 1), "kvnet-migration.sock",
                                                &p->pairs[1].dst, e);
                                if (r >= 0)
                                        p->n_pairs = 2;
                                else
                                        pair_stop(&p->pairs[0]);
                        }
                }
                if (r >= 0) {
                        p->port = at;
                        break;
                }
                if (r != -EADDRINUSE)
                        return r;
        }
        if (r == -EADDRINUSE)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "migration proxy on node %s: no free port%s on %s",
                                    rt->node_name, port ? "" : " pair", address);
        if ((r = record(p, p->dst_dir, false, e)) < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int node_mig_source_start(NodePodRuntime *rt, const NodePod *source, const char *address, uint16_t port, bool direct,
                          NodeMigProxies **ret, NodeErr *e) {
        int r = check_args(address, port, direct, false, e);
        if (r < 0)
                return r;
        _cleanup_(node_mig_proxies_freep) NodeMigProxies *p = calloc(1, sizeof *p);
        if (!p || !(p->src_dir = strdup(source->dir)) ||
            !(p->dest_uri = strdup("qemu+unix:///system?socket=/run/libvirt/kvnet-migration-ctl.sock")))
                return -ENOMEM;
        p->port = port;
        p->n_pairs = 1;
        r = source_pair(rt, source, address, port, "kvnet-migration-ctl.sock", &p->pairs[0], e);
        if (r >= 0 && direct) {
                p->n_pairs = 2;
                r = source_pair(rt, source, address, (uint16_t) (port + 1), "kvnet-migration.sock", &p->pairs[1], e);
                if (r >= 0 && !(p->migrate_uri = strdup("unix:///run/libvirt/kvnet-migration.sock")))
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = record(p, p->src_dir, true, e);
        if (r < 0)
                return r; /* the cleanup stops what started */
        *ret = TAKE_PTR(p);
        return 0;
}

/* Both halves on one machine (podrun, the tests): the target's listeners, then the source's. */
int node_mig_proxies_start(const NodeMigProxySpec *s, NodeMigProxies **ret, NodeErr *e) {
        if (!s->source || !s->target || !s->source_rt || !s->target_rt)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "migration proxies: source and target are needed");
        int r = check_args(s->target_address, s->port, s->direct, false, e);
        if (r < 0)
                return r;
        _cleanup_(node_mig_proxies_freep) NodeMigProxies *t = NULL, *src = NULL;
        if ((r = node_mig_target_start(s->target_rt, s->target, s->target_address, s->port, s->direct, &t, e)) < 0 ||
            (r = node_mig_source_start(s->source_rt, s->source, s->target_address, s->port, s->direct, &src, e)) < 0)
                return r;
        /* one object: the source's pairs with the target's processes */
        for (size_t i = 0; i < t->n_pairs; i++) {
                src->pairs[i].dst = t->pairs[i].dst;
                t->pairs[i].dst = (NodeProc) { 0 };
        }
        src->dst_dir = TAKE_PTR(t->dst_dir);
        *ret = TAKE_PTR(src);
        return 0;
}
