/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon: the report, one JSON object on stdout (docs/testing.md, "Measuring migrations: flowmon"). */
#include <stdio.h>

#include "tests/tools/flowmon/flowmon.h"

typedef struct Outage {
        uint64_t start, duration;
} Outage;

static int cmp_outage_duration(const void *a, const void *b) {
        const Outage *x = a, *y = b;
        if (x->duration != y->duration)
                return x->duration > y->duration ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_outage_start(const void *a, const void *b) {
        const Outage *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

static json_t *report_ping(const Ctx *c) {
        const Ping *p = c->ping;
        char target[NI_MAXHOST];
        if (getnameinfo((const struct sockaddr *) &p->dst, p->dst_len, target, sizeof target, NULL, 0,
                        NI_NUMERICHOST) != 0)
                snprintf(target, sizeof target, "%s", p->arg);

        /* Outages: runs of unanswered requests, from the first lost send to the next answered send
         * (or the end of sending). */
        _cleanup_free_ Outage *out = NULL;
        _cleanup_free_ uint64_t *rtts = NULL;
        size_t n_out = 0, out_alloc = 0, n_rtt = 0;
        if (p->n_sent > 0)
                rtts = calloc(p->n_sent, sizeof *rtts);
        for (size_t i = 0; i < p->n_sent;) {
                if (p->recs[i].recv != 0) {
                        if (rtts)
                                rtts[n_rtt++] = p->recs[i].recv - p->recs[i].sent;
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < p->n_sent && p->recs[j].recv == 0)
                        j++;
                uint64_t end = j < p->n_sent ? p->recs[j].sent : c->stop;
                if (grow((void **) &out, &out_alloc, n_out + 1, sizeof *out) >= 0)
                        out[n_out++] = (Outage) { .start = p->recs[i].sent, .duration = end - p->recs[i].sent };
                i = j;
        }
        size_t n_show = n_out;
        if (n_out > MAX_LOST_TIMES) {
                qsort(out, n_out, sizeof *out, cmp_outage_duration);
                n_show = MAX_LOST_TIMES;
        }
        if (n_show > 0)
                qsort(out, n_show, sizeof *out, cmp_outage_start);
        json_t *lost_times = json_array();
        for (size_t i = 0; i < n_show; i++)
                json_array_append_new(lost_times, json_pack("[II]", ms(out[i].start - c->start), ms(out[i].duration)));

        /* Fewer than two replies prove no continuity: the whole window counts as the gap. */
        uint64_t max_gap = p->max_gap;
        if (p->received < 2 && !c->gap_from_start)
                max_gap = c->stop - c->start;
        if (c->gap_from_start) {
                uint64_t first = p->received ? p->first_rx - c->start : c->stop - c->start;
                if (first > max_gap)
                        max_gap = first;
        }
        uint64_t tail = !p->received ? c->stop - c->start : c->stop > p->last_rx ? c->stop - p->last_rx : 0;

        json_t *rtt = json_null();
        if (n_rtt > 0) {
                qsort(rtts, n_rtt, sizeof *rtts, cmp_u64);
                double median = n_rtt % 2 ? (double) rtts[n_rtt / 2] : (rtts[n_rtt / 2 - 1] + rtts[n_rtt / 2]) / 2.0;
                rtt = json_pack("{s:f,s:f,s:f}", "min", rtts[0] / 1000.0, "median", median / 1000.0, "max",
                                rtts[n_rtt - 1] / 1000.0);
        }

        json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:o}", "target", target, "intervalMs",
                              (json_int_t) (p->interval_usec / USEC_PER_MSEC), "sent", (json_int_t) p->n_sent,
                              "received", (json_int_t) p->received, "lost", (json_int_t) (p->n_sent - p->received),
                              "duplicates", (json_int_t) p->duplicates, "sendErrors", (json_int_t) p->send_errors,
                              "maxGapMs", ms(max_gap), "tailGapMs", ms(tail), "lostTimesMs", lost_times, "outages",
                              (json_int_t) n_out, "rttMs", rtt);
        if (o && p->send_errors > 0)
                json_object_set_new(o, "lastSendError", json_string(strerror(p->last_send_error)));
        if (o && p->dgram)
                json_object_set_new(o, "socket", json_string("dgram"));
        return o;
}

static json_t *report_echo(const Ctx *c) {
        TcpEcho *e = c->echo;
        /* Lines still outstanding at the end stalled at least until then. */
        if (!e->closed && e->expect < e->n_sent && c->end - e->sent_at[e->expect] > e->max_stall)
                e->max_stall = c->end - e->sent_at[e->expect];
        json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "target", e->arg, "peer",
                              e->peer, "connected", true, "closed", e->closed, "reconnects", (json_int_t) 0, "sent",
                              (json_int_t) e->n_sent, "echoed", (json_int_t) e->echoed, "mismatched",
                              (json_int_t) e->mismatched, "pending", (json_int_t) (e->n_sent - e->expect),
                              "sendBlocked", (json_int_t) e->send_blocked, "maxStallMs", ms(e->max_stall),
                              "connectMs", ms(e->connect_usec), "bytesIn", (json_int_t) e->bytes_in, "bytesOut",
                              (json_int_t) e->bytes_out);
        if (o && e->closed) {
                json_object_set_new(o, "error", json_string(e->error));
                json_object_set_new(o, "closedMs", json_integer(ms(e->closed_at - c->start)));
        }
        return o;
}

static json_t *report_sink(const Ctx *c) {
        const Sink *k = c->sink;
        json_t *conns = json_array();
        const SinkConn *longest = NULL;
        uint64_t longest_life = 0;
        for (size_t i = 0; i < k->n_conns; i++) {
                const SinkConn *sc = k->conns[i];
                uint64_t until = sc->closed ? sc->closed_at : c->stop;
                uint64_t life = until > sc->accepted ? until - sc->accepted : 0;
                if (!longest || life > longest_life) {
                        longest = sc;
                        longest_life = life;
                }
                json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "peer", sc->peer, "acceptedMs",
                                      ms(sc->accepted > c->start ? sc->accepted - c->start : 0), "lines",
                                      (json_int_t) sc->lines, "badLines", (json_int_t) sc->bad_lines, "bytes",
                                      (json_int_t) sc->bytes, "seqGaps", (json_int_t) sc->seq_gaps, "seqBackwards",
                                      (json_int_t) sc->seq_backwards, "maxGapMs", ms(sc->max_gap), "closed",
                                      sc->closed);
                if (!o)
                        continue;
                json_object_set_new(o, "connId", sc->have_conn_id ? json_integer((json_int_t) sc->conn_id) : json_null());
                json_object_set_new(o, "bootId", sc->boot_id[0] ? json_string(sc->boot_id) : json_null());
                json_object_set_new(o, "firstSeq", sc->have_seq ? json_integer((json_int_t) sc->first_seq) : json_null());
                json_object_set_new(o, "lastSeq", sc->have_seq ? json_integer((json_int_t) sc->last_seq) : json_null());
                if (sc->closed) {
                        json_object_set_new(o, "closedMs", json_integer(ms(sc->closed_at - c->start)));
                        if (sc->error[0])
                                json_object_set_new(o, "error", json_string(sc->error));
                }
                json_array_append_new(conns, o);
        }

        /* No lines from the longest-lived connection: nothing shows continuity. */
        uint64_t sink_gap = c->stop - c->start;
        if (longest && longest->lines >= 2)
                sink_gap = longest->max_gap;
        else if (longest)
                sink_gap = longest_life;
        uint64_t silence = k->lines >= 2 ? k->max_silence : c->stop - c->start;

        _cleanup_free_ uint64_t *ids = NULL;
        json_t *conn_ids = json_array(), *boot_ids = json_array();
        if (k->n_conn_ids > 0 && (ids = calloc(k->n_conn_ids, sizeof *ids))) {
                memcpy(ids, k->conn_ids, k->n_conn_ids * sizeof *ids);
                qsort(ids, k->n_conn_ids, sizeof *ids, cmp_u64);
                for (size_t i = 0; i < k->n_conn_ids; i++)
                        json_array_append_new(conn_ids, json_integer((json_int_t) ids[i]));
        }
        for (size_t i = 0; i < k->n_boot_ids; i++)
                json_array_append_new(boot_ids, json_string(k->boot_ids[i]));

        return json_pack("{s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:o,s:o}", "listen", k->listen, "connections",
                         (json_int_t) k->accepted, "rejected", (json_int_t) k->rejected, "lines",
                         (json_int_t) k->lines, "conns", conns, "sinkMaxGapMs", ms(sink_gap), "maxSilenceMs",
                         ms(silence), "sinkConnIds", conn_ids, "bootIds", boot_ids);
}

int report(const Ctx *c) {
        _cleanup_json_ json_t *root = json_object();
        if (!root)
                return -ENOMEM;
        if (c->ping && json_object_set_new(root, "ping", report_ping(c)) < 0)
                return -ENOMEM;
        if (c->echo && json_object_set_new(root, "tcpEcho", report_echo(c)) < 0)
                return -ENOMEM;
        if (c->sink && json_object_set_new(root, "tcpSink", report_sink(c)) < 0)
                return -ENOMEM;
        json_t *marks = json_array();
        for (size_t i = 0; i < c->n_marks; i++)
                json_array_append_new(marks, json_integer(ms(c->marks[i] - c->start)));
        if (json_object_set_new(root, "durationMs", json_integer(ms(c->stop - c->start))) < 0 ||
            json_object_set_new(root, "marksMs", marks) < 0)
                return -ENOMEM;
        if (json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) < 0 ||
            fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
                return -EIO;
        return 0;
}
