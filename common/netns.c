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

int netns_id(int ns_fd, NetnsId *ret) {
        struct stat st;
        if (fstat(ns_fd, &st) < 0)
                return negative_errno();
        *ret = (NetnsId){ .dev = (uint64_t) st.st_dev, .ino = (uint64_t) st.st_ino };
        return 0;
}

int netns_id_of_path(const char *path, NetnsId *ret) {
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        *ret = (NetnsId){ .dev = (uint64_t) st.st_dev, .ino = (uint64_t) st.st_ino };
        return 0;
}

bool netns_same(int a, int b) {
        NetnsId ia, ib;
        return netns_id(a, &ia) == 0 && netns_id(b, &ib) == 0 && netns_id_equal(&ia, &ib);
}

int netns_owner(int ns_fd) {
        static const struct {
                const char *path;
                NetnsOwner owner;
        } known[] = { { "/proc/thread-self/ns/net", NETNS_OWN }, { "/proc/1/ns/net", NETNS_HOST } };
        NetnsId id;
        int r = netns_id(ns_fd, &id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(known); i++) {
                NetnsId k;
                r = netns_id_of_path(known[i].path, &k);
                if (r == -ENOENT || r == -EACCES)
                        continue;
                if (r < 0)
                        return r;
                if (netns_id_equal(&k, &id))
                        return known[i].owner;
        }
        return NETNS_OTHER;
}
