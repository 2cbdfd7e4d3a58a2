/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon: what a client sees of a flow while a VM live-migrates (or a link flaps).
 *
 *   flowmon [--ping ADDR [--interval-ms N] [--gap-from-start]]
 *           [--tcp-echo HOST:PORT [--tcp-interval-ms N] [--connect-timeout-ms N]]
 *           [--tcp-sink [ADDR:]PORT]
 *           [--duration SEC] [--drain-ms N] [--ready-file PATH]
 *
 * Runs inside the client's network namespace until SIGTERM/SIGINT or --duration, then stops sending,
 * waits up to --drain-ms (default 1000) for replies/echoes still in flight, and prints one JSON object
 * on stdout (see docs/testing.md, "Measuring migrations: flowmon"). SIGUSR1 records a marker
 * ("marksMs"), e.g. the moment a test starts the migration. A second SIGTERM/SIGINT skips the drain.
 * Exit 0 after a measurement (whatever it measured), 1 on usage or setup errors (message on stderr,
 * naming the option and the value).
 *
 * Single-threaded: one epoll loop (common/event.c), timerfds for the send schedules, signalfds. */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>

#include "tests/tools/flowmon/flowmon.h"

static Ctx *ctx_free(Ctx *c) {
        if (!c)
                return NULL;
        /* The loop first: it closes the fds its sources own. */
        event_loop_free(c->loop);
        if (c->ping)
                free(c->ping->recs);
        free(c->ping);
        if (c->echo) {
                if (!c->echo->io && c->echo->fd >= 0)
                        close(c->echo->fd);
                free(c->echo->sent_at);
        }
        free(c->echo);
        if (c->sink) {
                for (size_t i = 0; i < c->sink->n_conns; i++)
                        free(c->sink->conns[i]);
                free(c->sink->conns);
        }
        free(c->sink);
        free(c->marks);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Ctx *, ctx_free);

void finish(Ctx *c) {
        c->end = now_usec();
        event_loop_exit(c->loop, 0);
}

void maybe_finish(Ctx *c) {
        if (c->stopping && !ping_in_flight(c) && !echo_in_flight(c))
                finish(c);
}

/* ---------------------------------------------------------------- stop, signals */

static int on_drain_timer(EventSource *s, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        finish(c);
        return 0;
}

/* Stops sending; waits for what is still in flight (at most --drain-ms). */
static void stop(Ctx *c) {
        if (c->stopping)
                return;
        c->stopping = true;
        c->stop = now_usec();
        if (c->ping) {
                event_source_free(c->ping->timer);
                c->ping->timer = NULL;
        }
        if (c->echo) {
                event_source_free(c->echo->timer);
                c->echo->timer = NULL;
        }
        event_source_free(c->stop_timer);
        c->stop_timer = NULL;
        if (!ping_in_flight(c) && !echo_in_flight(c)) {
                finish(c);
                return;
        }
        int r = event_add_timer(c->loop, c->drain_usec, 0, on_drain_timer, c, &c->drain_timer);
        if (r < 0) {
                log_warning_errno(r, "cannot arm the drain timer: %m");
                finish(c);
        }
}

static int on_stop_timer(EventSource *s, void *userdata) {
        (void) s;
        stop(userdata);
        return 0;
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        if (signo == SIGUSR1) {
                if (grow((void **) &c->marks, &c->marks_alloc, c->n_marks + 1, sizeof *c->marks) >= 0)
                        c->marks[c->n_marks++] = now_usec();
                return 0;
        }
        if (c->stopping)
                finish(c); /* second signal: no drain */
        else
                stop(c);
        return 0;
}

/* ---------------------------------------------------------------- main */

static int write_ready_file(const char *path) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        if (write(fd, buf, (size_t) n) != n || rename(tmp, path) < 0) {
                int r = negative_errno();
                unlink(tmp);
                return r;
        }
        return 0;
}

static int usage(void) {
        fprintf(stderr,
                "usage: flowmon [--ping ADDR [--interval-ms N] [--gap-from-start]]\n"
                "               [--tcp-echo HOST:PORT [--tcp-interval-ms N] [--connect-timeout-ms N]]\n"
                "               [--tcp-sink [ADDR:]PORT] [--duration SEC] [--drain-ms N] [--ready-file PATH]\n"
                "Runs until SIGTERM/SIGINT or --duration, prints one JSON object; SIGUSR1 records a mark.\n");
        return 1;
}

static int bad(const char *opt, const char *v, const char *why) {
        fprintf(stderr, "flowmon: invalid %s '%s'%s%s\n", opt, v, why ? ": " : "", why ? why : "");
        return 1;
}

int main(int argc, char **argv) {
        enum { O_PING = 256, O_INTERVAL, O_GAP_START, O_ECHO, O_ECHO_INTERVAL, O_CONNECT_TIMEOUT, O_SINK,
               O_DURATION, O_DRAIN, O_READY };
        static const struct option opts[] = {
                { "ping", required_argument, NULL, O_PING },
                { "interval-ms", required_argument, NULL, O_INTERVAL },
                { "gap-from-start", no_argument, NULL, O_GAP_START },
                { "tcp-echo", required_argument, NULL, O_ECHO },
                { "tcp-interval-ms", required_argument, NULL, O_ECHO_INTERVAL },
                { "connect-timeout-ms", required_argument, NULL, O_CONNECT_TIMEOUT },
                { "tcp-sink", required_argument, NULL, O_SINK },
                { "duration", required_argument, NULL, O_DURATION },
                { "drain-ms", required_argument, NULL, O_DRAIN },
                { "ready-file", required_argument, NULL, O_READY },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *ping = NULL, *echo = NULL, *sink = NULL, *ready = NULL;
        uint64_t interval = 10, echo_interval = 20, connect_timeout = 5000, drain = 1000, duration_usec = 0;
        bool gap_from_start = false;
        int o;

        log_set_ident("flowmon");
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (o) {
                case O_PING:
                        ping = optarg;
                        break;
                case O_INTERVAL:
                        if (parse_uint(optarg, 1, 1000, &interval) < 0)
                                return bad("--interval-ms", optarg, "must be 1..1000");
                        break;
                case O_GAP_START:
                        gap_from_start = true;
                        break;
                case O_ECHO:
                        echo = optarg;
                        break;
                case O_ECHO_INTERVAL:
                        if (parse_uint(optarg, 1, 10000, &echo_interval) < 0)
                                return bad("--tcp-interval-ms", optarg, "must be 1..10000");
                        break;
                case O_CONNECT_TIMEOUT:
                        if (parse_uint(optarg, 1, 600000, &connect_timeout) < 0)
                                return bad("--connect-timeout-ms", optarg, "must be 1..600000");
                        break;
                case O_SINK:
                        sink = optarg;
                        break;
                case O_DURATION: {
                        char *end;
                        errno = 0;
                        double d = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end != '\0' || !(d > 0) || d > 7 * 86400)
                                return bad("--duration", optarg, "must be seconds > 0 (fractions allowed)");
                        duration_usec = (uint64_t) (d * USEC_PER_SEC);
                        if (duration_usec == 0)
                                duration_usec = 1;
                        break;
                }
                case O_DRAIN:
                        if (parse_uint(optarg, 0, 60000, &drain) < 0)
                                return bad("--drain-ms", optarg, "must be 0..60000");
                        break;
                case O_READY:
                        if (!*optarg)
                                return bad("--ready-file", optarg, "empty path");
                        ready = optarg;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        return usage();
                }
        }
        if (optind < argc)
                return bad("argument", argv[optind], "no positional arguments");
        if (!ping && !echo && !sink) {
                fprintf(stderr, "flowmon: at least one of --ping, --tcp-echo, --tcp-sink is required\n");
                return usage();
        }

        _cleanup_(ctx_freep) Ctx *c = calloc(1, sizeof *c);
        if (!c)
                return log_error_errno(-ENOMEM, "%m"), 1;
        c->drain_usec = drain * USEC_PER_MSEC;
        c->gap_from_start = gap_from_start;
        int r = event_loop_new(&c->loop);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop: %m"), 1;

        static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                r = event_add_signal(c->loop, sigs[i], on_signal, c, NULL);
                if (r < 0)
                        return log_error_errno(r, "cannot watch signal %s: %m", strsignal(sigs[i])), 1;
        }
        /* A peer closing the echo connection must not kill us; send() uses MSG_NOSIGNAL, but be sure. */
        signal(SIGPIPE, SIG_IGN);

        if (ping && ping_setup(c, ping, interval * USEC_PER_MSEC) < 0)
                return 1;
        if (sink && sink_setup(c, sink) < 0)
                return 1;
        if (echo && echo_setup(c, echo, echo_interval * USEC_PER_MSEC, connect_timeout * USEC_PER_MSEC) < 0)
                return 1;

        c->start = now_usec();
        if (c->ping) {
                r = event_add_timer(c->loop, 0, c->ping->interval_usec, on_ping_timer, c, &c->ping->timer);
                if (r < 0)
                        return log_error_errno(r, "--ping: cannot arm the send timer: %m"), 1;
        }
        if (c->echo) {
                r = event_add_timer(c->loop, 0, c->echo->interval_usec, on_echo_timer, c, &c->echo->timer);
                if (r < 0)
                        return log_error_errno(r, "--tcp-echo: cannot arm the send timer: %m"), 1;
        }
        if (duration_usec > 0) {
                r = event_add_timer(c->loop, duration_usec, 0, on_stop_timer, c, &c->stop_timer);
                if (r < 0)
                        return log_error_errno(r, "--duration: cannot arm the timer: %m"), 1;
        }
        if (ready) {
                r = write_ready_file(ready);
                if (r < 0)
                        return log_error_errno(r, "--ready-file: cannot write '%s': %m", ready), 1;
        }

        r = event_loop_run(c->loop);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m"), 1;
        if (!c->stopping) { /* defensive: the loop only exits through finish() */
                c->stop = now_usec();
                c->end = c->stop;
        }
        r = report(c);
        if (r < 0)
                return log_error_errno(r, "cannot write the report: %m"), 1;
        return 0;
}
