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

const char *node_mig_proxies_dest_uri(const NodeMigProxies *p) {
        return p->dest_uri;
}

const char *node_mig_proxies_migrate_uri(const NodeMigProxies *p) {
        return p->migrate_uri;
}

static bool sock_exists(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* One pair: target node listens on addr:port and connects to dst_sock; source node listens on src_sock
 * and connects to addr:port. */
static int pair_start(const NodeMigProxySpec *s, const char *src_name, const char *dst_name, uint16_t port, Pair *pp,
                      NodeErr *e) {
        _cleanup_free_ char *src_sock = NULL, *dst_sock = NULL, *listen = NULL, *unix_connect = NULL, *unix_listen = NULL,
                            *connect = NULL, *src_log = NULL, *dst_log = NULL;
        int r;
        if ((r = node_libvirtd_sock(s->source, src_name, &src_sock, e)) < 0 ||
            (r = node_libvirtd_sock(s->target, dst_name, &dst_sock, e)) < 0)
                return r;
        bool v6 = strchr(s->target_address, ':');
        if (asprintf(&listen, "%s:%u,bind=%s%s%s,reuseaddr,fork,nodelay", v6 ? "TCP6-LISTEN" : "TCP-LISTEN", port,
                     v6 ? "[" : "", s->target_address, v6 ? "]" : "") < 0 ||
            asprintf(&unix_connect, "UNIX-CONNECT:%s", dst_sock) < 0 ||
            asprintf(&unix_listen, "UNIX-LISTEN:%s,fork", src_sock) < 0 ||
            asprintf(&connect, "%s:%s%s%s:%u,nodelay", v6 ? "TCP6" : "TCP", v6 ? "[" : "", s->target_address,
                     v6 ? "]" : "", port) < 0 ||
            asprintf(&src_log, "%s/proxy.log", s->source->dir) < 0 || asprintf(&dst_log, "%s/proxy.log", s->target->dir) < 0)
                return -ENOMEM;
        char *dst_argv[] = { (char *) SOCAT, (char *) "-b", (char *) SOCAT_BUF, listen, unix_connect, NULL };
        char *src_argv[] = { (char *) SOCAT, (char *) "-b", (char *) SOCAT_BUF, unix_listen, connect, NULL };
        if ((r = node_spawn_in_netns(s->target_rt->node_netns, dst_log, dst_argv, &pp->dst)) < 0)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "migration proxy on node %s (port %u)",
                                    s->target_rt->node_name, port);
        (void) unlink(src_sock); /* a socket left by an earlier proxy */
        if ((r = node_spawn_in_netns(s->source_rt->node_netns, src_log, src_argv, &pp->src)) < 0)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "migration proxy on node %s ('%s')",
                                    s->source_rt->node_name, src_sock);
        pp->src_sock = TAKE_PTR(src_sock);
        for (int i = 0; i < 100; i++) {
                if (sock_exists(pp->src_sock))
                        return 0;
                if (!node_proc_alive(&pp->src) || !node_proc_alive(&pp->dst))
                        break;
                (void) usleep(50 * 1000);
        }
        return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, -EIO,
                            "migration proxy %s -> %s:%u -> %s did not come up (socat's log: %s, %s)", pp->src_sock,
                            s->target_address, port, dst_sock, src_log, dst_log);
}

int node_mig_proxies_start(const NodeMigProxySpec *s, NodeMigProxies **ret, NodeErr *e) {
        if (!s->source || !s->target || !s->source_rt || !s->target_rt || !s->target_address || !*s->target_address ||
            strspn(s->target_address, "0123456789abcdefABCDEF.:") != strlen(s->target_address))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "migration proxies: source, target and an IP literal target address are needed, got '%.80s'",
                                    s->target_address ? s->target_address : "(null)");
        if (s->port == 0 || (s->direct && s->port == UINT16_MAX))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "migration proxies: 'port' must be 1..%u, got %u",
                                    s->direct ? UINT16_MAX - 1 : UINT16_MAX, s->port);
        _cleanup_(node_mig_proxies_freep) NodeMigProxies *p = calloc(1, sizeof *p);
        if (!p || !(p->src_dir = strdup(s->source->dir)) || !(p->dst_dir = strdup(s->target->dir)) ||
            !(p->dest_uri = strdup("qemu+unix:///system?socket=/run/libvirt/kvnet-migration-ctl.sock")))
                return -ENOMEM;
        int r = pair_start(s, "kvnet-migration-ctl.sock", "libvirt-sock", s->port, &p->pairs[0], e);
        p->n_pairs = 1;
        if (r >= 0 && s->direct) {
                p->n_pairs = 2;
                r = pair_start(s, "kvnet-migration.sock", "kvnet-migration.sock", (uint16_t) (s->port + 1), &p->pairs[1], e);
                if (r >= 0 && !(p->migrate_uri = strdup("unix:///run/libvirt/kvnet-migration.sock")))
                        r = -ENOMEM;
        }
        if (r >= 0) {
                NodeProc srcs[2], dsts[2];
                const char *socks[2];
                for (size_t i = 0; i < p->n_pairs; i++) {
                        srcs[i] = p->pairs[i].src;
                        dsts[i] = p->pairs[i].dst;
                        socks[i] = p->pairs[i].src_sock;
                }
                if ((r = record_write(p->src_dir, srcs, p->n_pairs, socks, p->n_pairs)) < 0 ||
                    (r = record_write(p->dst_dir, dsts, p->n_pairs, NULL, 0)) < 0)
                        r = node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "recording the migration proxies");
        }
        if (r < 0)
                return r; /* the cleanup stops what started */
        *ret = TAKE_PTR(p);
        return 0;
}
