/* SPDX-License-Identifier: Apache-2.0 */
/* parallelDelegates (a kvnet extension; Multus runs delegates one by one, its #1016 asks for this): every
 * delegate's ADD in a child process of its own, at the same time; each child reports its return, its error
 * and its raw result through a pipe. For delegates that share nothing (different plugins, bridges, IPAM
 * stores): two configs that create the same host-side object can race. */
#include <fcntl.h>
#include <sys/wait.h>

#include "common/fileio.h"
#include "multus-compat/plugin/plugin.h"

typedef struct Report {
        int r;
        KvErr e;
        size_t len; /* bytes of raw result that follow */
} Report;

static int write_all(int fd, const void *p, size_t n) {
        for (const char *c = p; n > 0;) {
                ssize_t w = write(fd, c, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -EIO;
                c += w;
                n -= (size_t) w;
        }
        return 0;
}

static _Noreturn void child(McPlugin *p, const McCache *c, size_t i, int fd) {
        NodeCniResult *res = NULL;
        Report rep = {};
        rep.r = mc_delegate_add(p, c, &c->delegates[i], &res, &rep.e);
        rep.len = rep.r >= 0 && res && res->raw ? strlen(res->raw) : 0;
        int ok = write_all(fd, &rep, sizeof rep) >= 0 && (rep.len == 0 || write_all(fd, res->raw, rep.len) >= 0);
        _exit(ok ? 0 : 1);
}

/* What child i reported: its result into results[i], or its error. */
static int collect(int fd, const McCachedDelegate *d, NodeCniResult **result, KvErr *e) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        Report rep;
        NodeErr ne = {};
        int r = read_fd_max(fd, MC_CONFIG_MAX + sizeof rep, &buf, &len);
        if (r < 0 || len < sizeof rep)
                return kverr_set(e, KV_ERR_INTERNAL, r < 0 ? r : -EPIPE, "network '%s' (%s): no report from its ADD", d->name,
                                 d->ifname);
        memcpy(&rep, buf, sizeof rep);
        if (rep.r < 0) {
                if (!kverr_is_set(e))
                        *e = rep.e;
                return rep.r;
        }
        if (rep.len != len - sizeof rep)
                return kverr_set(e, KV_ERR_INTERNAL, -EPIPE, "network '%s' (%s): a cut report", d->name, d->ifname);
        r = node_cni_result_parse(buf + sizeof rep, rep.len, result, &ne);
        if (r < 0)
                kverr_set(e, KV_ERR_INTERNAL, r, "network '%s' (%s): %s", d->name, d->ifname, ne.msg);
        node_err_done(&ne);
        return r;
}

int mc_delegates_add_parallel(McPlugin *p, const McCache *c, NodeCniResult **results, KvErr *e) {
        size_t n = c->n_delegates, started = 0;
        while (n > 0 && c->delegates[n - 1].aux) /* the auxiliary chain runs after every network, below */
                n--;
        _cleanup_free_ int *fds = calloc(n ? n : 1, sizeof *fds);
        _cleanup_free_ pid_t *pids = calloc(n ? n : 1, sizeof *pids);
        int first = 0;
        if (!fds || !pids)
                return -ENOMEM;
        fflush(NULL);
        for (; started < n; started++) {
                int pp[2];
                if (pipe2(pp, O_CLOEXEC) < 0) {
                        first = kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "pipe");
                        break;
                }
                pid_t pid = fork();
                if (pid < 0) {
                        first = kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "fork");
                        close(pp[0]);
                        close(pp[1]);
                        break;
                }
                if (pid == 0) {
                        close(pp[0]);
                        child(p, c, started, pp[1]);
                }
                close(pp[1]);
                fds[started] = pp[0];
                pids[started] = pid;
        }
        for (size_t i = 0; i < started; i++) {
                int r = collect(fds[i], &c->delegates[i], &results[i], e);
                close(fds[i]);
                if (r < 0 && first == 0)
                        first = r;
        }
        for (size_t i = 0; i < started; i++)
                while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        for (size_t i = n; first == 0 && i < c->n_delegates; i++)
                first = mc_delegate_add(p, c, &c->delegates[i], &results[i], e);
        return first;
}
