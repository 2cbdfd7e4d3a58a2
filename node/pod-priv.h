/* SPDX-License-Identifier: Apache-2.0 */
/* The pod runtime's internals, shared by node/pod*.c, node/libvirtd.c, node/mig-proxy.c and reachable by
 * tests/unit/test-node-pod.c. */
#pragma once

#include <dirent.h>

#include "common/kname.h"
#include "node/node-priv.h"
#include "node/pod.h"

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* ---- proc.c: a process by pid and start time (clock ticks since boot, /proc/PID/stat field 22) */

typedef struct NodeProc {
        pid_t pid; /* 0: none */
        unsigned long long start_time;
} NodeProc;

/* CLOCK_MONOTONIC in milliseconds. */
long long node_mono_ms(void);
/* -ESRCH when there is no such process (or only a zombie). */
int node_proc_start_time(pid_t pid, unsigned long long *ret) _wur_;
int node_proc_identify(pid_t pid, NodeProc *ret) _wur_;
/* The same process still runs (reaps it first when it is our exited child). */
bool node_proc_alive(const NodeProc *p);
/* -ESRCH when it does not run; group: to its process group. */
int node_proc_signal(const NodeProc *p, int sig, bool group);
int node_proc_wait_gone(const NodeProc *p, unsigned timeout_ms) _wur_;
/* SIGTERM (to its process group with group: a forking server's children too), then after grace_ms
 * SIGKILL (process and group); 0 once gone. */
int node_proc_stop(const NodeProc *p, unsigned grace_ms, bool group);
/* Forks argv[0] (a path) as a new session inside the network namespace at netns_path (as `ip netns exec`
 * does it), stdin /dev/null, stdout and stderr appended to log_path; *ret is the child. */
int node_spawn_in_netns(const char *netns_path, const char *log_path, char *const argv[], NodeProc *ret) _wur_;
/* Sends sig to every process whose network namespace is dev/ino; returns how many. */
int node_netns_kill_all(dev_t dev, ino_t ino, int sig);

/* ---- pod-store.c: the pod record */

typedef enum NodePodState {
        NODE_POD_STARTING, /* start in progress: whatever it names may be half made */
        NODE_POD_RUNNING,  /* the launcher reached its ready phase */
        NODE_POD_STOPPING, /* stop in progress, or a stop failed at some step */
        _NODE_POD_STATE_MAX,
        _NODE_POD_STATE_INVALID = -EINVAL,
} NodePodState;

const char *node_pod_state_to_string(NodePodState s);
NodePodState node_pod_state_from_string(const char *s);

#define NODE_POD_RECORD_KIND "kvnetPodRecord"
#define NODE_POD_RECORD_VERSION 1
#define NODE_POD_RECORD_MAX (1u << 20)

struct NodePod {
        /* the spec */
        char *namespace_, *name, *uid;
        char *vm_namespace, *vm_name, *vm_interface, *ifname;
        NodePodBinding binding;
        NodePodNic *nics; /* strings owned */
        size_t n_nics;
        bool incoming;
        unsigned incoming_timeout_s;
        int grace_seconds;
        /* where and when */
        char *node_name;
        NodePodState state;
        long long created_ms; /* realtime */
        /* the sandbox: "" until made */
        char sandbox_name[NODE_SANDBOX_NAME_MAX + 1];
        unsigned long long sandbox_dev, sandbox_ino;
        /* CNI: the network is named before ADD runs (DEL of an attachment never made is harmless) */
        char *network;
        char *cni_result; /* raw result JSON, NULL before the ADD succeeded */
        /* libvirtd and launcher */
        NodeProc libvirtd;
        char *libvirt_uri;
        NodeProc launcher;

        /* not persisted: derived */
        char *dir;
        char *sandbox_path; /* /run/netns/<sandbox_name> or "" */
        char *launcher_socket, *status_file, *serial_log;
        NodeCniResult *result;
        char ip4[64], ip6[64], mac[32];
};

/* A pod object for spec s on node node_name (no record written); paths under state_dir. */
int node_pod_new(const NodePodSpec *s, const char *node_name, const char *state_dir, NodePod **ret) _wur_;
/* Sets dir and the paths derived from it, and from the sandbox name and the CNI result. */
int node_pod_derive(NodePod *p, const char *state_dir, NodeErr *e) _wur_;
/* A NIC that may join p's NICs: names valid, not the pod network's, no repeat (-EEXIST), room left (-E2BIG). */
int node_pod_nic_check(const NodePod *p, const NodePodNic *n, NodeErr *e) _wur_;
/* Appends a copy of n to p's NICs; removes the i-th. */
int node_pod_nic_append(NodePod *p, const NodePodNic *n) _wur_;
void node_pod_nic_remove(NodePod *p, size_t i);
/* The record as JSON (one object, keys in a fixed order). */
int node_pod_record_encode(const NodePod *p, char **ret) _wur_;
/* Parses and checks a record (every field named in errors); paths derived under state_dir. */
int node_pod_record_decode(const char *text, size_t len, const char *what, const char *state_dir, NodePod **ret,
                           NodeErr *e) _wur_;
/* <dir>/pod.json, atomically (temp file, fsync, rename, fsync dir). */
int node_pod_record_write(const NodePod *p, NodeErr *e) _wur_;
int node_pod_record_read(const char *state_dir, const char *uid, NodePod **ret, NodeErr *e) _wur_;
/* Removes the pod's directory (its files, then the record, then the directory). */
int node_pod_dir_remove(const NodePod *p) _wur_;

/* Names: a DNS label ([a-z0-9-], 1..63, alnum at both ends), a DNS subdomain (labels joined by '.', at
 * most 253), a uid ([a-z0-9-], 1..36). */
bool node_pod_uid_valid(const char *s);

/* ---- pod.c */

struct NodePodRuntime {
        char *node_name, *node_netns, *conf_dir, *cache_dir, *netd_socket, *state_dir, *launcher, *libvirtd_starter;
        char *sandbox_prefix;
        char *image_dir; /* NULL: the launcher's default store */
        char *mig_tls;   /* NULL: plain TCP between the migration proxies */
        char *pods_dir; /* <state_dir>/pods */
        unsigned start_timeout_ms;
        NodeCniRuntime *cni;
};

/* The pod's lock, <pods_dir>/.<uid>.lock (flock, exclusive): held by a start until it is done and by a
 * stop, so that two runtime processes never work on one pod at once. wait=false: -EWOULDBLOCK when
 * another holds it. The fd is close-on-exec (children never inherit it). */
int node_pod_lock(const char *pods_dir, const char *uid, bool wait, int *ret_fd) _wur_;
/* Removes the lock file (while holding it) and closes fd. */
void node_pod_unlock_remove(const char *pods_dir, const char *uid, int fd);

/* The longest unix socket path a pod of this runtime makes itself (<pods_dir>/<uid>/launcher.sock). */
size_t node_pod_socket_path_max(const char *state_dir);

/* ---- libvirtd.c: the stand-in's "container image" (scripts/libvirt-node.sh) */

/* Starts the pod's libvirtd in its sandbox: runs `STARTER start <sandbox> <sandbox> --dir <dir>/libvirt`
 * and reads URI= and PID= from its output; the URI's socket path is checked against sun_path's limit.
 * Records p->libvirtd and p->libvirt_uri. */
int node_libvirtd_start(const NodePodRuntime *rt, NodePod *p, NodeErr *e) _wur_;
/* `STARTER stop ...` (destroys the domains, stops libvirtd, kills QEMU, removes the dir); when that
 * fails, the recorded libvirtd is killed. 0 when nothing was there. */
int node_libvirtd_stop(const NodePodRuntime *rt, NodePod *p, NodeErr *e) _wur_;
/* /proc/<libvirtd pid>/root/run/libvirt/<name>: a pod's libvirt socket reached through its daemon's
 * mount namespace (short whatever the pod directory's depth); -ENAMETOOLONG over sun_path. */
int node_libvirtd_sock(const NodePod *p, const char *name, char **ret, NodeErr *e) _wur_;

/* ---- mig-proxy.c */

/* Ends the proxies recorded in the pod's directory (proxies.json), if any. */
int node_mig_proxies_reap(const NodePod *p);

/* ---- running helpers (pod.c) */

/* Runs argv (with envp = environ) and collects stdout (at most 64 KiB) into *ret_out; stderr appended
 * to err_path (may be NULL: /dev/null). A non-zero exit is -EPROTO with *ret_status set. */
int node_run_collect(char *const *argv, const char *err_path, unsigned timeout_ms, char **ret_out, int *ret_status) _wur_;
