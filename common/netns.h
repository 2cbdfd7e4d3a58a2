/* SPDX-License-Identifier: Apache-2.0 */
/* Running short, non-blocking work inside another network namespace from a single-threaded process. */
#pragma once

#include "common/util.h"

typedef struct NetnsGuard {
        int orig_fd; /* our own netns, restored by netns_leave() */
} NetnsGuard;

/* Opens a netns path (/var/run/netns/X, /proc/PID/ns/net). -ENOENT when it does not exist,
 * -EINVAL when the path is not a network namespace. */
int netns_open(const char *path, int *ret_fd) _wur_;
/* Switches the calling thread into ns_fd; netns_leave() switches back (and must be called). */
int netns_enter(int ns_fd, NetnsGuard *g) _wur_;
int netns_leave(NetnsGuard *g);
/* A namespace's identity (its nsfs inode): what stays the same while the namespace lives, whatever path names it. */
typedef struct NetnsId {
        uint64_t dev, ino;
} NetnsId;
int netns_id(int ns_fd, NetnsId *ret) _wur_;
int netns_id_of_path(const char *path, NetnsId *ret) _wur_;
static inline bool netns_id_equal(const NetnsId *a, const NetnsId *b) {
        return a->dev == b->dev && a->ino == b->ino;
}
/* True if the two fds name the same namespace. */
bool netns_same(int a, int b);

/* Whose namespace ns_fd is, when it must be a pod's sandbox: NETNS_OWN (the caller's own: netd's, the node's),
 * NETNS_HOST (PID 1's: the machine's), NETNS_OTHER (neither: a sandbox may be it), or < 0 when it cannot tell. */
typedef enum NetnsOwner {
        NETNS_OTHER,
        NETNS_OWN,
        NETNS_HOST,
} NetnsOwner;
int netns_owner(int ns_fd) _wur_;
