/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-netd: parse options, build the manager, reconcile, open the socket, loop. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/unixsock.h"
#include "netd/core/server.h"
#include "netd/netd.h"

static void help(void) {
        printf("Usage: kvnet-netd [--socket PATH] [--state-dir DIR] [--config FILE] [--no-fsync] [--log-level LEVEL]\n"
               "\n"
               "kvnet's node network daemon: IPAM, bridges, taps, veths and NAT for kvnet attachments.\n"
               "  --socket PATH      control socket (default %s)\n"
               "  --state-dir DIR    persistent state (default /var/lib/kvnet)\n"
               "  --config FILE      JSON config: natBackend (\"nftables\"), durable (true), sriovPools\n"
               "                     ([{\"resourceName\", \"pfs\": [...], \"bindVfio\"}]), sysfsRoot (\"/sys\"),\n"
               "                     sriovSimulate (false; tests only), policy ({bridges, subnets, adoptBridges,\n"
               "                     allowAntiSpoofingOff, allowSpoofchkOff, allowTrust}: docs/SECURITY.md)\n"
               "  --no-fsync         do not fsync state (tests/benchmarks only: a power loss can lose claims)\n"
               "  --log-level LEVEL  err, warning, notice, info (default), debug\n",
               KV_DEFAULT_SOCKET);
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        (void) s;
        log_info("received signal %d, exiting", signo);
        event_loop_exit(userdata, 0);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },   { "state-dir", required_argument, NULL, 'd' },
                { "config", required_argument, NULL, 'c' },   { "no-fsync", no_argument, NULL, 'n' },
                { "log-level", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        NetdOptions o = { .socket_path = KV_DEFAULT_SOCKET, .state_dir = "/var/lib/kvnet", .durable = true };
        int c;
        log_set_ident("kvnet-netd");
        while ((c = getopt_long(argc, argv, "s:d:c:nl:h", opts, NULL)) >= 0) {
                switch (c) {
                case 's': o.socket_path = optarg; break;
                case 'd': o.state_dir = optarg; break;
                case 'c': o.config_path = optarg; break;
                case 'n': o.durable = false; break;
                case 'l':
                        if (log_set_max_level_option(optarg) < 0)
                                return 2;
                        break;
                case 'h': help(); return 0;
                default: return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "kvnet-netd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        /* A socket path sun_path cannot hold is refused before anything is reconciled. */
        KvErr e = {};
        struct sockaddr_un sa;
        if (unix_sockaddr("kvnet-netd: --socket", o.socket_path, &sa, NULL, &e) < 0) {
                fprintf(stderr, "%s\n", e.msg);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        int r = mkdir_p(o.state_dir, 0700);
        if (r < 0) {
                log_error_errno(r, "cannot create state dir '%s': %m", o.state_dir);
                return 1;
        }
        char lockpath[PATH_MAX];
        snprintf(lockpath, sizeof lockpath, "%s/lock", o.state_dir);
        _cleanup_close_ int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lockfd < 0) {
                /* e.g. a read-only file system: netd could record nothing, so it does not start */
                log_error_errno(negative_errno(), "state dir '%s': cannot open its lock file '%s' for writing: %m",
                                o.state_dir, lockpath);
                return 1;
        }
        if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
                r = negative_errno();
                if (r == -EWOULDBLOCK)
                        log_error("state dir '%s' is in use by another kvnet-netd (%s is locked)", o.state_dir,
                                  lockpath);
                else
                        log_error_errno(r, "state dir '%s': cannot lock '%s': %m", o.state_dir, lockpath);
                return 1;
        }
        /* Make sure the socket's directory exists. */
        char sockdir[PATH_MAX];
        snprintf(sockdir, sizeof sockdir, "%s", o.socket_path);
        char *slash = strrchr(sockdir, '/');
        if (slash && slash != sockdir) {
                *slash = '\0';
                IGNORE_RESULT(mkdir_p(sockdir, 0755));
        }

        _cleanup_(event_loop_freep) EventLoop *loop = NULL;
        r = event_loop_new(&loop);
        if (r < 0) {
                log_error_errno(r, "event loop: %m");
                return 1;
        }

        _cleanup_(manager_freep) Manager *m = NULL;
        r = manager_new(&o, loop, &m, &e);
        if (r >= 0)
                r = manager_start(m, &e);
        if (r < 0) {
                if (kverr_is_set(&e))
                        log_error("%s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                else
                        log_error_errno(r, "start-up failed: %m");
                return 1;
        }
        _cleanup_(server_freep) Server *srv = NULL;
        r = server_new(loop, m, o.socket_path, &srv, &e);
        if (r == -EADDRINUSE) {
                log_error("another kvnet-netd is serving %s", o.socket_path);
                return 1;
        }
        if (r < 0 && kverr_is_set(&e)) {
                log_error("%s", e.msg);
                return 1;
        }
        if (r < 0) {
                log_error_errno(r, "listening on %s: %m", o.socket_path);
                return 1;
        }
        if (event_add_signal(loop, SIGTERM, on_signal, loop, NULL) < 0 ||
            event_add_signal(loop, SIGINT, on_signal, loop, NULL) < 0) {
                log_error("cannot install signal handlers");
                return 1;
        }
        log_info("ready on %s (state %s)", o.socket_path, o.state_dir);
        r = event_loop_run(loop);
        if (r < 0) {
                log_error_errno(r, "event loop failed: %m");
                return 1;
        }
        return 0;
}
