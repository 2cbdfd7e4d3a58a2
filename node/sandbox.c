/* SPDX-License-Identifier: Apache-2.0 */
/* Pod sandboxes: a named network namespace under /run/netns, made as `ip netns add` makes one (an empty
 * file with the namespace bind-mounted on it), lo up. The namespace is created in a child process, so
 * the caller's own namespace never changes. Its device/inode is recorded: a later operation refuses a
 * path that now names another namespace. */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "common/fileio.h"
#include "node/node-priv.h"

#define PREFIX_MAX 24

static bool prefix_valid(const char *p) {
        size_t n = p ? strlen(p) : 0;
        if (n == 0 || n > PREFIX_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
                        return false;
        return true;
}

/* /run/netns as a shared mount point, so that namespaces mounted in it are seen by other mount
 * namespaces (what `ip netns add` does). */
static int netns_dir_prepare(void) {
        int r = mkdir_p(NODE_NETNS_DIR, 0755);
        if (r < 0)
                return r;
        if (mount("", NODE_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
                return 0;
        if (errno != EINVAL)
                return negative_errno();
        if (mount(NODE_NETNS_DIR, NODE_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
                return negative_errno();
        if (mount("", NODE_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
                return negative_errno();
        return 0;
}

/* In the child: a new netns bind-mounted on path, lo up. Returns an exit status. */
static int child_make(const char *path) {
        if (unshare(CLONE_NEWNET) < 0)
                return 10;
        if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
                return 11;
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 12;
        struct ifreq ifr = { 0 };
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return 13;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return 14;
        close(s);
        return 0;
}

int node_sandbox_new(const char *prefix, NodeSandbox **ret, NodeErr *e) {
        if (!prefix_valid(prefix))
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, -EINVAL,
                                    "sandbox: prefix must be [a-z0-9-], 1..%d characters, got '%.40s'", PREFIX_MAX,
                                    prefix ? prefix : "(null)");
        uint64_t rnd;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, negative_errno(), "sandbox: getrandom");
        _cleanup_(node_sandbox_freep) NodeSandbox *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        snprintf(s->name, sizeof s->name, "%s-%016llx", prefix, (unsigned long long) rnd);
        snprintf(s->path, sizeof s->path, "%s/%s", NODE_NETNS_DIR, s->name);

        int r = netns_dir_prepare();
        if (r < 0)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r, "sandbox: preparing %s", NODE_NETNS_DIR);
        int fd = open(s->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, negative_errno(), "sandbox: creating '%s'", s->path);
        close(fd);

        pid_t pid = fork();
        if (pid < 0) {
                r = negative_errno();
                (void) unlink(s->path);
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r, "sandbox: fork");
        }
        if (pid == 0)
                _exit(child_make(s->path));
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        break;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                (void) umount2(s->path, MNT_DETACH);
                (void) unlink(s->path);
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, -EIO,
                                    "sandbox: making namespace '%s' failed (step %d)", s->name,
                                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (s->fd < 0 || fstat(s->fd, &st) < 0) {
                r = negative_errno();
                (void) umount2(s->path, MNT_DETACH);
                (void) unlink(s->path);
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r, "sandbox: opening '%s'", s->path);
        }
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        *ret = TAKE_PTR(s);
        return 0;
}

int node_sandbox_verify(const NodeSandbox *s) {
        struct stat st;
        if (stat(s->path, &st) < 0)
                return negative_errno();
        return st.st_dev == s->dev && st.st_ino == s->ino ? 0 : -ESTALE;
}

/* True when path is a mounted namespace (nsfs), not the plain file under it. */
static bool path_is_netns(const char *path) {
        struct statfs sf;
        return statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

int node_sandbox_delete(NodeSandbox *s, NodeErr *e) {
        int r = node_sandbox_verify(s);
        if (r == -ENOENT)
                return 0;
        if (r == -ESTALE && !path_is_netns(s->path)) {
                /* our mount is gone and only the file is left: nothing else lives there */
                if (unlink(s->path) < 0 && errno != ENOENT)
                        return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, negative_errno(), "sandbox: removing '%s'",
                                            s->path);
                return 0;
        }
        if (r == -ESTALE)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r,
                                    "sandbox: '%s' is no longer the namespace this sandbox made; not deleting it", s->path);
        if (r < 0)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, r, "sandbox: '%s'", s->path);
        if (umount2(s->path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, negative_errno(), "sandbox: unmounting '%s'",
                                    s->path);
        if (unlink(s->path) < 0 && errno != ENOENT)
                return node_err_set(e, NODE_ERR_SANDBOX, NULL, NULL, negative_errno(), "sandbox: removing '%s'", s->path);
        return 0;
}

NodeSandbox *node_sandbox_free(NodeSandbox *s) {
        if (!s)
                return NULL;
        if (s->fd >= 0)
                close(s->fd);
        free(s);
        return NULL;
}
