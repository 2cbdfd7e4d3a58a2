/* SPDX-License-Identifier: Apache-2.0 */
/* Processes of the pod runtime: entering a network namespace in a forked child the way `ip netns exec`
 * does, a process's identity (pid + start time from /proc/PID/stat, so a reused pid is not mistaken
 * for ours), and finding the processes that live in a network namespace. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fileio.h"
#include "node/pod-priv.h"

int node_child_enter_netns(int ns_fd) {
        if (setns(ns_fd, CLONE_NEWNET) < 0)
                return negative_errno();
        /* /sys shows the network devices of the namespace it was mounted in: a private mount namespace
         * with a fresh sysfs, as `ip netns exec` makes (plugins and libvirt read /sys/class/net). */
        if (unshare(CLONE_NEWNS) < 0)
                return negative_errno();
        if (mount("", "/", "none", MS_SLAVE | MS_REC, NULL) < 0)
                return negative_errno();
        (void) umount2("/sys", MNT_DETACH);
        if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                return negative_errno();
        return 0;
}

/* Field 22 of /proc/PID/stat, and whether the process is a zombie. */
static int stat_read(pid_t pid, unsigned long long *ret, bool *ret_zombie) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = read_file_max(path, 4096, &buf, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        /* the command name may hold spaces and ')': the fields start after the last ')' */
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return -EBADMSG;
        *ret_zombie = p[2] == 'Z' || p[2] == 'X';
        /* field 3 is the state; the start time is field 22 */
        p += 2;
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int node_proc_start_time(pid_t pid, unsigned long long *ret) {
        unsigned long long st;
        bool zombie;
        int r = stat_read(pid, &st, &zombie);
        if (r < 0)
                return r;
        if (zombie)
                return -ESRCH;
        *ret = st;
        return 0;
}

int node_proc_identify(pid_t pid, NodeProc *ret) {
        unsigned long long st;
        int r = node_proc_start_time(pid, &st);
        if (r < 0)
                return r;
        *ret = (NodeProc) { .pid = pid, .start_time = st };
        return 0;
}

bool node_proc_alive(const NodeProc *p) {
        if (!p || p->pid <= 0)
                return false;
        unsigned long long st;
        bool zombie;
        if (stat_read(p->pid, &st, &zombie) < 0 || st != p->start_time)
                return false;
        if (zombie) {
                /* our own child that exited: reaped here (only this one: the start time matched) */
                int status;
                (void) waitpid(p->pid, &status, WNOHANG);
                return false;
        }
        return true;
}

int node_proc_signal(const NodeProc *p, int sig, bool group) {
        if (!node_proc_alive(p))
                return -ESRCH;
        if (kill(group ? -p->pid : p->pid, sig) < 0)
                return negative_errno();
        return 0;
}

long long node_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int node_proc_wait_gone(const NodeProc *p, unsigned timeout_ms) {
        long long deadline = node_mono_ms() + timeout_ms;
        while (node_proc_alive(p)) {
                if (node_mono_ms() >= deadline)
                        return -ETIMEDOUT;
                (void) usleep(50 * 1000);
        }
        return 0;
}

int node_proc_stop(const NodeProc *p, unsigned grace_ms, bool group) {
        if (!node_proc_alive(p))
                return 0;
        (void) node_proc_signal(p, SIGTERM, group);
        if (node_proc_wait_gone(p, grace_ms) >= 0)
                return 0;
        (void) node_proc_signal(p, SIGKILL, true);
        (void) node_proc_signal(p, SIGKILL, false);
        return node_proc_wait_gone(p, 5000);
}

int node_netns_kill_all(dev_t dev, ino_t ino, int sig) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        int n = 0;
        struct dirent *de;
        pid_t self = getpid();
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0 || pid == self)
                        continue;
                char path[64];
                struct stat st;
                snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
                if (stat(path, &st) < 0 || st.st_dev != dev || st.st_ino != ino)
                        continue;
                if (kill((pid_t) pid, sig) == 0)
                        n++;
        }
        return n;
}

extern char **environ;

int node_run_collect(char *const *argv, const char *err_path, unsigned timeout_ms, char **ret_out, int *ret_status) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int out = pfd[0];
        _cleanup_close_ int errfd = err_path ? open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
                                             : open("/dev/null", O_WRONLY | O_CLOEXEC);
        _cleanup_close_ int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (errfd < 0 || nul < 0) {
                int r = negative_errno();
                close(pfd[1]);
                return r;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(pfd[1]);
                return r;
        }
        if (pid == 0) {
                /* its own process group: a timeout kills whatever it started and still waits for */
                (void) setpgid(0, 0);
                if (dup2(nul, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(errfd, 2) < 0)
                        _exit(127);
                (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execve(argv[0], argv, environ);
                _exit(127);
        }
        close(pfd[1]);
        size_t len = 0, cap = 65536;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        long long deadline = node_mono_ms() + timeout_ms;
        int r = 0;
        for (;;) {
                long long left = deadline - node_mono_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd pl = { .fd = out, .events = POLLIN };
                int n = poll(&pl, 1, (int) (left > 1000 ? 1000 : left));
                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (n <= 0)
                        continue;
                ssize_t k = read(out, buf + len, cap - len);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        break; /* EOF (the script's background children got /dev/null or files, not this pipe) */
                len += (size_t) k;
                if (len == cap) {
                        r = -EMSGSIZE;
                        break;
                }
        }
        if (r < 0)
                (void) kill(-pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (r < 0)
                return r;
        buf[len] = '\0';
        int st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (ret_status)
                *ret_status = st;
        if (ret_out)
                *ret_out = TAKE_PTR(buf);
        return st == 0 ? 0 : -EPROTO;
}

int node_spawn_in_netns(const char *netns_path, const char *log_path, char *const argv[], NodeProc *ret) {
        _cleanup_close_ int ns = open(netns_path, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        _cleanup_close_ int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (ns < 0 || log < 0 || nul < 0)
                return negative_errno();
        if (access(argv[0], X_OK) < 0)
                return negative_errno();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* its own session and process group: a stop can signal all of it, a terminal's signals miss it */
                if (setsid() < 0 || node_child_enter_netns(ns) < 0)
                        _exit(125);
                if (dup2(nul, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
                        _exit(125);
                (void) close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execve(argv[0], argv, environ);
                _exit(127);
        }
        /* the start time of the forked child is the same process's after exec */
        if (node_proc_identify(pid, ret) < 0) {
                /* it is gone already: reap it; its log or status says why */
                int status;
                (void) waitpid(pid, &status, 0);
                *ret = (NodeProc) { .pid = pid, .start_time = 0 };
        }
        return 0;
}
