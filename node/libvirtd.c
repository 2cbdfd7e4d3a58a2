/* SPDX-License-Identifier: Apache-2.0 */
/* The pod's private libvirtd. This is the kubelet stand-in's "container image": what a launcher pod's
 * container would run besides the launcher. The runtime does not reimplement it: it execs
 * scripts/libvirt-node.sh (the "libvirtd starter" of the node config), which runs libvirtd inside the
 * sandbox's network namespace and a private mount namespace with the pod's own /etc/libvirt, /run/libvirt,
 * ... under <pod dir>/libvirt. The runtime records the daemon's pid and start time and the URI. */
#include <signal.h>
#include <sys/stat.h>

#include "common/unixsock.h"
#include "node/pod-priv.h"

#define STARTER_TIMEOUT_MS (150u * 1000) /* the starter itself gives libvirtd 120 s */

static int starter_argv(const NodePodRuntime *rt, const NodePod *p, const char *cmd, char **dir, char *argv[8]) {
        if (asprintf(dir, "%s/libvirt", p->dir) < 0)
                return -ENOMEM;
        argv[0] = rt->libvirtd_starter;
        argv[1] = (char *) cmd;
        argv[2] = (char *) p->sandbox_name; /* the starter's node name: its host_uuid differs per pod */
        argv[3] = (char *) p->sandbox_name; /* the network namespace, by name under /run/netns */
        argv[4] = (char *) "--dir";
        argv[5] = *dir;
        argv[6] = NULL;
        return 0;
}

/* The value of KEY= on a line of out ("" when none). */
static void out_value(const char *out, const char *key, char *buf, size_t n) {
        size_t kl = strlen(key);
        buf[0] = '\0';
        for (const char *l = out; l && *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t) (nl - l) : strlen(l);
                if (len > kl && strncmp(l, key, kl) == 0 && l[kl] == '=') {
                        snprintf(buf, n, "%.*s", (int) (len - kl - 1), l + kl + 1);
                        return;
                }
                l = nl ? nl + 1 : NULL;
        }
}

int node_libvirtd_start(const NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        _cleanup_free_ char *dir = NULL, *out = NULL, *err_path = NULL;
        char *argv[8];
        int r = starter_argv(rt, p, "start", &dir, argv);
        if (r < 0)
                return r;
        if (asprintf(&err_path, "%s/libvirtd-starter.log", p->dir) < 0)
                return -ENOMEM;
        int status = 0;
        r = node_run_collect(argv, err_path, STARTER_TIMEOUT_MS, &out, &status);
        if (r == -EPROTO)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, -EIO,
                                    "pod %s/%s: '%s start' exited with status %d (see %s)", p->namespace_, p->name,
                                    rt->libvirtd_starter, status, err_path);
        if (r < 0)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, r, "pod %s/%s: running '%s start'", p->namespace_,
                                    p->name, rt->libvirtd_starter);
        char uri[4096], pid_s[32];
        out_value(out, "URI", uri, sizeof uri);
        out_value(out, "PID", pid_s, sizeof pid_s);
        char *end;
        long pid = strtol(pid_s, &end, 10);
        if (!uri[0] || !pid_s[0] || *end || pid <= 0)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, -EBADMSG,
                                    "pod %s/%s: '%s start' printed no URI= and PID= (output '%.200s')", p->namespace_,
                                    p->name, rt->libvirtd_starter, out);
        /* the pid first, so that a failure below still stops this daemon */
        r = node_proc_identify((pid_t) pid, &p->libvirtd);
        if (r < 0)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, r, "pod %s/%s: libvirtd (pid %ld) is not running",
                                    p->namespace_, p->name, pid);
        free(p->libvirt_uri);
        if (!(p->libvirt_uri = strdup(uri)))
                return -ENOMEM;
        /* the launcher connects to the socket named in the URI: it must fit sun_path */
        const char *sock = strstr(uri, "socket=");
        if (sock) {
                char path[4096];
                snprintf(path, sizeof path, "%.*s", (int) strcspn(sock + 7, "&"), sock + 7);
                struct sockaddr_un sa;
                KvErr ke = { 0 };
                r = unix_sockaddr("libvirt socket", path, &sa, NULL, &ke);
                if (r < 0)
                        return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, r, "pod %s/%s: %s", p->namespace_, p->name,
                                            ke.msg);
        }
        return 0;
}

int node_libvirtd_stop(const NodePodRuntime *rt, NodePod *p, NodeErr *e) {
        _cleanup_free_ char *dir = NULL, *err_path = NULL;
        char *argv[8];
        int r = starter_argv(rt, p, "stop", &dir, argv);
        if (r < 0)
                return r;
        struct stat st;
        bool have_dir = stat(dir, &st) == 0;
        if (have_dir && p->sandbox_name[0]) {
                if (asprintf(&err_path, "%s/libvirtd-starter.log", p->dir) < 0)
                        return -ENOMEM;
                int status = 0;
                r = node_run_collect(argv, err_path, STARTER_TIMEOUT_MS, NULL, &status);
        } else
                r = 0;
        /* whatever the starter did: the daemon we recorded must be gone */
        if (node_proc_alive(&p->libvirtd))
                (void) node_proc_stop(&p->libvirtd, 10000, false);
        if (node_proc_alive(&p->libvirtd))
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, -EBUSY, "pod %s/%s: libvirtd (pid %d) does not exit",
                                    p->namespace_, p->name, (int) p->libvirtd.pid);
        if (r < 0 && stat(dir, &st) == 0)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, r, "pod %s/%s: '%s stop' failed (see %s)",
                                    p->namespace_, p->name, rt->libvirtd_starter, err_path ? err_path : "its log");
        p->libvirtd = (NodeProc) { 0 };
        return 0;
}

int node_libvirtd_sock(const NodePod *p, const char *name, char **ret, NodeErr *e) {
        if (p->libvirtd.pid <= 0)
                return node_err_set(e, NODE_ERR_LIBVIRTD, NULL, NULL, -ESRCH, "pod %s/%s has no libvirtd", p->namespace_,
                                    p->name);
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/proc/%d/root/run/libvirt/%s", (int) p->libvirtd.pid, name) < 0)
                return -ENOMEM;
        struct sockaddr_un sa;
        KvErr ke = { 0 };
        int r = unix_sockaddr("pod socket", path, &sa, NULL, &ke);
        if (r < 0)
                return node_err_set(e, NODE_ERR_PROXY, NULL, NULL, r, "%s", ke.msg);
        *ret = TAKE_PTR(path);
        return 0;
}
