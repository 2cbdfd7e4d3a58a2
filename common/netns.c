/* SPDX-License-Identifier: Apache-2.0 */
#include "common/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int netns_open(const char *path, int *ret_fd) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return negative_errno();
        if (sfs.f_type != NSFS_MAGIC && sfs.f_type != PROC_SUPER_MAGIC)
                return -EINVAL;
        /* setns() with CLONE_NEWNET rejects anything that is not a netns; probe without switching. */
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int netns_enter(int ns_fd, NetnsGuard *g) {
        g->orig_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (g->orig_fd < 0)
                return negative_errno();
        if (setns(ns_fd, CLONE_NEWNET) < 0) {
                int r = negative_errno();
                close(g->orig_fd);
                g->orig_fd = -1;
                return r;
        }
        return 0;
}

int netns_leave(NetnsGuard *g) {
        if (g->orig_fd < 0)
                return 0;
        int r = setns(g->orig_fd, CLONE_NEWNET) < 0 ? negative_errno() : 0;
        close(g->orig_fd);
        g->orig_fd = -1;
        return r;
}

bool netns_same(int a, int b) {
        struct stat sa, sb;
        if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
                return false;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int netns_owner(int ns_fd) {
        static const struct {
                const char *path;
                NetnsOwner owner;
        } known[] = { { "/proc/thread-self/ns/net", NETNS_OWN }, { "/proc/1/ns/net", NETNS_HOST } };
        struct stat st;
        if (fstat(ns_fd, &st) < 0)
                return negative_errno();
        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                struct stat k;
                if (stat(known[i].path, &k) < 0) {
                        if (errno == ENOENT || errno == EACCES)
                                continue;
                        return negative_errno();
                }
                if (k.st_dev == st.st_dev && k.st_ino == st.st_ino)
                        return known[i].owner;
        }
        return NETNS_OTHER;
}
