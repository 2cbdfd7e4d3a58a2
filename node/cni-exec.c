/* SPDX-License-Identifier: Apache-2.0 */
/* Running one plugin: found on the CNI path, a clean environment, stdin from memory (or, behind the runtime's
 * start gate, from a socket written once the gate passed), stdout read up to a cap, a deadline after which it is
 * killed. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/netns.h"
#include "node/node-priv.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int node_cni_find_plugin(const NodeCniRuntime *rt, const char *type, char **ret, NodeErr *e) {
        if (!node_cni_type_valid(type))
                return node_err_set(e, NODE_ERR_CONFIG, type, NULL, -EINVAL,
                                    "plugin type must be a file name ([A-Za-z0-9._-]), got '%.80s'", type);
        for (size_t i = 0; i < rt->n_path; i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", rt->path[i], type) < 0)
                        return -ENOMEM;
                struct stat st;
                if (stat(p, &st) < 0)
                        continue;
                if (!S_ISREG(st.st_mode) || access(p, X_OK) < 0)
                        continue;
                *ret = TAKE_PTR(p);
                return 0;
        }
        return node_err_set(e, NODE_ERR_PLUGIN_NOT_FOUND, type, NULL, -ENOENT,
                            "plugin '%s' not found in '%s' (no regular executable file of that name)", type,
                            rt->path_list);
}

void node_strv_free(char **v) {
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

static bool attach_command(const char *c) {
        return streq(c, "ADD") || streq(c, "DEL") || streq(c, "CHECK");
}

int node_cni_env_build(const NodeCniRuntime *rt, const NodeCniCall *c, char ***ret) {
        size_t max = rt->n_env + 8, n = 0;
        char **v = calloc(max, sizeof *v);
        if (!v)
                return -ENOMEM;
        bool have_path = false;
        for (size_t i = 0; i < rt->n_env; i++) {
                have_path = have_path || strncmp(rt->env[i], "PATH=", 5) == 0;
                if (!(v[n++] = strdup(rt->env[i])))
                        goto oom;
        }
        if (!have_path && !(v[n++] = strdup(DEFAULT_PATH)))
                goto oom;
        if (asprintf(&v[n++], "CNI_COMMAND=%s", c->command) < 0 || asprintf(&v[n++], "CNI_PATH=%s", rt->path_list) < 0)
                goto oom_last;
        if (attach_command(c->command)) {
                if (asprintf(&v[n++], "CNI_CONTAINERID=%s", c->container_id ?: "") < 0 ||
                    asprintf(&v[n++], "CNI_NETNS=%s", c->netns ?: "") < 0 ||
                    asprintf(&v[n++], "CNI_IFNAME=%s", c->ifname ?: "") < 0 ||
                    asprintf(&v[n++], "CNI_ARGS=%s", c->args ?: "") < 0)
                        goto oom_last;
        }
        *ret = v;
        return 0;
oom_last:
        v[n - 1] = NULL; /* asprintf leaves it undefined */
oom:
        node_strv_free(v);
        return -ENOMEM;
}

static int memfd_with(const char *data) {
        _cleanup_close_ int fd = memfd_create("node-cni-stdin", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t len = strlen(data);
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                off += (size_t) n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

/* Reads fd until EOF, the cap, or the deadline (now_usec() clock): 0, -EMSGSIZE, -ETIMEDOUT. */
static int read_until(int fd, size_t max, uint64_t deadline, char **ret, size_t *ret_len) {
        size_t len = 0, cap = 0;
        _cleanup_free_ char *buf = NULL;
        int r;
        while ((r = read_append_until(fd, max, deadline, &buf, &cap, &len)) > 0)
                ;
        if (r == -EFBIG)
                return -EMSGSIZE;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The plugin's stdin behind the start gate: a socket the child reads, the parent's end, with a send timeout. */
static int gate_socket(unsigned timeout_ms, int *ret_child, int *ret_parent) {
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return negative_errno();
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        if (setsockopt(sp[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
                int r = negative_errno();
                close(sp[0]);
                close(sp[1]);
                return r;
        }
        *ret_child = sp[0];
        *ret_parent = sp[1];
        return 0;
}

/* The gate, then the config on the plugin's stdin and its end. A plugin that is gone already (it failed to start)
 * makes the send fail: its exit status tells why, not the send. */
static int gate_then_feed(const NodeCniRuntime *rt, int fd, const char *data) {
        int r = rt->start_gate(rt->start_gate_data);
        if (r < 0)
                return r;
        for (size_t off = 0, len = strlen(data); off < len;) {
                ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        break;
                off += (size_t) n;
        }
        return 0;
}

int node_cni_exec(const NodeCniRuntime *rt, const char *bin, const char *type, const NodeCniCall *c, const char *stdin_data,
                  char **ret, NodeErr *e) {
        char **envp = NULL;
        int r = node_cni_env_build(rt, c, &envp);
        if (r < 0)
                return r;
        unsigned timeout = rt->timeout_ms ? rt->timeout_ms : 60000;
        _cleanup_close_ int in = -1, feed = -1;
        if (rt->start_gate)
                r = gate_socket(timeout, &in, &feed);
        else
                r = in = memfd_with(stdin_data);
        if (r < 0) {
                node_strv_free(envp);
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "cannot prepare the plugin's stdin");
        }
        _cleanup_close_ int errfd = rt->stderr_fd >= 0 ? fcntl(rt->stderr_fd, F_DUPFD_CLOEXEC, 3)
                                                         : open("/dev/null", O_WRONLY | O_CLOEXEC);
        int pfd[2];
        if (errfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
                r = negative_errno();
                node_strv_free(envp);
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "cannot set up the plugin's stdio");
        }
        _cleanup_close_ int out = pfd[0];
        char *argv[] = { (char *) bin, NULL };
        _cleanup_close_ int nsfd = -1;
        if (rt->exec_netns && (r = netns_open(rt->exec_netns, &nsfd)) < 0) {
                close(pfd[1]);
                node_strv_free(envp);
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "opening the plugins' network namespace '%s'",
                                    rt->exec_netns);
        }

        /* vfork() unless the child enters a namespace first: the child only moves descriptors and execs, and a
         * fork() of a caller that maps many libraries (kvnet-multus: libcurl's) copies their page tables for
         * nothing, ~1 ms per plugin. The caller is suspended until the exec, not longer (the start gate after). */
        pid_t pid = nsfd >= 0 ? fork() : vfork();
        if (pid < 0) {
                r = negative_errno();
                close(pfd[1]);
                node_strv_free(envp);
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "fork");
        }
        if (pid == 0) {
                if (dup2(in, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(errfd, 2) < 0)
                        _exit(127);
                if (nsfd >= 0 && node_child_enter_netns(nsfd) < 0)
                        _exit(126);
                (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execve(bin, argv, envp);
                _exit(127);
        }
        close(pfd[1]);
        node_strv_free(envp);
        if (feed >= 0) { /* the plugin starts meanwhile; it acts only once it has read its config */
                close(TAKE_FD(in));
                r = gate_then_feed(rt, feed, stdin_data);
                close(TAKE_FD(feed));
                if (r < 0) {
                        (void) kill(pid, SIGKILL);
                        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                        return node_err_set(e, NODE_ERR_GATE, type, c->command, r,
                                            "%s %s: the caller's start gate failed (the plugin read nothing)", type,
                                            c->command);
                }
        }

        size_t max = rt->output_max ? rt->output_max : (1u << 20);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        r = read_until(out, max, now_usec() + (uint64_t) timeout * 1000, &buf, &len);
        if (r < 0)
                (void) kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return node_err_set(e, NODE_ERR_EXEC, type, c->command, negative_errno(), "waitpid");
        if (r == -ETIMEDOUT)
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "%s %s: no answer within %u ms, killed", type,
                                    c->command, timeout);
        if (r == -EMSGSIZE)
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "%s %s: output larger than %zu bytes, killed",
                                    type, c->command, max);
        if (r < 0)
                return node_err_set(e, NODE_ERR_EXEC, type, c->command, r, "%s %s: reading its output", type, c->command);
        int st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (st != 0)
                return node_err_from_plugin(e, type, c->command, buf, st);
        *ret = TAKE_PTR(buf);
        return 0;
}
