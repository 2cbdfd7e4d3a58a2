/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon (tests/tools/flowmon/): the state of a measurement and what its files share. main.c: options,
 * signals, stop and drain; ping.c, echo.c, sink.c: the three instruments; report.c: the JSON output. */
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include "common/event.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/util.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define MAX_LOST_TIMES 20
#define SINK_LINE_MAX 512
#define SINK_MAX_BOOT_IDS 64
#define SINK_MAX_CONN_IDS 4096
#define SINK_MAX_CONNS 100000
#define ECHO_OUT_MAX 65536

/* Payload of every echo request: identifies our own replies even among other pingers' (raw sockets see
 * every ICMP packet of the namespace) and carries the full 64-bit sequence number. */
typedef struct FlowPayload {
        uint64_t cookie;
        uint64_t seq;
        uint64_t sent_usec;
        uint8_t pad[32];
} FlowPayload;

typedef struct PingRec {
        uint64_t sent;
        uint64_t recv; /* 0 = no reply (yet) */
} PingRec;

typedef struct Ping {
        const char *arg;
        int fd; /* owned by io */
        int family;
        bool dgram; /* unprivileged ICMP socket: the kernel owns the id */
        struct sockaddr_storage dst;
        socklen_t dst_len;
        uint16_t ident;
        uint64_t cookie;
        uint64_t interval_usec;
        PingRec *recs;
        size_t n_sent, n_alloc;
        uint64_t received, duplicates, send_errors;
        int last_send_error;
        uint64_t first_rx, last_rx, max_gap;
        EventSource *io, *timer;
} Ping;

typedef struct TcpEcho {
        const char *arg;
        int fd; /* owned by io once registered */
        uint64_t interval_usec;
        uint64_t connect_usec;
        char peer[NI_MAXHOST + NI_MAXSERV + 4];
        uint64_t *sent_at; /* by seq */
        size_t n_sent, n_alloc;
        uint64_t expect; /* next seq expected back */
        uint64_t echoed, mismatched, send_blocked;
        uint64_t bytes_in, bytes_out;
        uint64_t last_rx;
        uint64_t max_stall;
        char out[ECHO_OUT_MAX];
        size_t out_len;
        bool want_out;
        char in[128];
        size_t in_len;
        bool in_overflow;
        bool closed;
        uint64_t closed_at;
        char error[160];
        EventSource *io, *timer;
} TcpEcho;

typedef struct Ctx Ctx;

typedef struct SinkConn {
        Ctx *ctx;
        EventSource *io;
        char peer[NI_MAXHOST + NI_MAXSERV + 4];
        uint64_t accepted, closed_at, last_line;
        bool closed;
        char error[160];
        uint64_t lines, bad_lines, bytes;
        bool have_seq;
        uint64_t first_seq, last_seq, seq_gaps, seq_backwards;
        uint64_t max_gap;
        bool have_conn_id;
        uint64_t conn_id;
        char boot_id[65];
        char in[SINK_LINE_MAX];
        size_t in_len;
        bool in_overflow;
} SinkConn;

typedef struct Sink {
        const char *arg;
        char listen[NI_MAXHOST + NI_MAXSERV + 4];
        EventSource *io;
        SinkConn **conns;
        size_t n_conns, n_alloc;
        uint64_t accepted, rejected;
        uint64_t lines;
        uint64_t last_line_any, max_silence;
        uint64_t conn_ids[SINK_MAX_CONN_IDS];
        size_t n_conn_ids;
        char boot_ids[SINK_MAX_BOOT_IDS][65];
        size_t n_boot_ids;
} Sink;

struct Ctx {
        EventLoop *loop;
        uint64_t start, stop, end;
        uint64_t drain_usec;
        bool stopping;
        bool gap_from_start;
        Ping *ping;
        TcpEcho *echo;
        Sink *sink;
        uint64_t *marks;
        size_t n_marks, marks_alloc;
        EventSource *stop_timer, *drain_timer;
};

/* util.c */
/* Grows *p (*alloc elements of elsize) to hold at least need elements. */
int grow(void **p, size_t *alloc, size_t need, size_t elsize);
int safe_close_fd(int fd);
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* "host:port", "[v6]:port"; with allow_no_host also "port" alone (host = NULL). Modifies s. */
int split_host_port(char *s, bool allow_no_host, char **ret_host, char **ret_port);
const char *sockaddr_fmt(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);
int cmp_u64(const void *a, const void *b);

/* usec -> integer ms, rounded to nearest. */
static inline json_int_t ms(uint64_t usec) {
        return (json_int_t) ((usec + USEC_PER_MSEC / 2) / USEC_PER_MSEC);
}

/* main.c: the end of the measurement. */
void finish(Ctx *c);
/* Stopping and nothing in flight any more: finish. */
void maybe_finish(Ctx *c);

/* ping.c: --ping, ICMP echo requests on a schedule. */
int ping_setup(Ctx *c, const char *arg, uint64_t interval_usec);
int on_ping_timer(EventSource *s, void *userdata);
/* Are requests sent in the last drain period still unanswered? */
bool ping_in_flight(const Ctx *c);

/* echo.c: --tcp-echo, numbered lines to an echo server. */
int echo_setup(Ctx *c, const char *arg, uint64_t interval_usec, uint64_t timeout_usec);
int on_echo_timer(EventSource *s, void *userdata);
bool echo_in_flight(const Ctx *c);

/* sink.c: --tcp-sink, a listener counting the lines guests send. */
int sink_setup(Ctx *c, const char *arg);

/* report.c: the one JSON object on stdout. */
int report(const Ctx *c);
