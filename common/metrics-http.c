/* SPDX-License-Identifier: Apache-2.0 */
#include "common/metrics-http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct KvMetricsServer {
        struct MHD_Daemon *d;
        unsigned port;
        kv_metrics_render_fn render;
        void *userdata;
};

static int parse(const char *s, const char *key, bool any_ok, struct sockaddr_in *sin, KvErr *e) {
        char host[64];
        const char *colon = s ? strrchr(s, ':') : NULL;
        char *end = NULL;
        if (!colon || (size_t) (colon - s) >= sizeof host || colon == s || strlen(s) >= 64)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be IPV4:PORT, got '%.64s'", key,
                                 s ? s : "");
        memcpy(host, s, (size_t) (colon - s));
        host[colon - s] = '\0';
        unsigned long port = strtoul(colon + 1, &end, 10);
        *sin = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (!colon[1] || *end || port > 65535 || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s must be IPV4:PORT (port 0..65535), got '%.64s'", key, s);
        if (!any_ok && sin->sin_addr.s_addr == htonl(INADDR_ANY))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s %.64s: name one address of the node (0.0.0.0 would serve the figures on every "
                                 "interface, a tenant's bridge gateway too)",
                                 key, s);
        return 0;
}

int kv_metrics_parse_listen(const char *s, const char *key, bool any_ok, KvErr *e) {
        struct sockaddr_in sin;
        return parse(s, key, any_ok, &sin, e);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type, char *body) {
        if (!body)
                return MHD_NO; /* out of memory: the connection is closed */
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", type);
        enum MHD_Result ok = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        (void) version, (void) upload, (void) upload_size, (void) con_cls;
        KvMetricsServer *s = cls;
        if (!streq(method, "GET") && !streq(method, "HEAD"))
                return respond(conn, 405, "text/plain", strdup("only GET /metrics\n"));
        if (!streq(url, "/metrics"))
                return respond(conn, 404, "text/plain", strdup("only /metrics is served here\n"));
        const char *why = NULL;
        char *text = s->render(s->userdata, &why);
        if (!text) {
                char *msg = NULL;
                if (asprintf(&msg, "%s\n", why ? why : "out of memory") < 0)
                        msg = NULL;
                return respond(conn, 503, "text/plain", msg);
        }
        return respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

int kv_metrics_server_new(const char *listen, const char *key, bool any_ok, kv_metrics_render_fn render,
                          void *userdata, KvMetricsServer **ret, KvErr *e) {
        struct sockaddr_in sin;
        int r = parse(listen, key, any_ok, &sin, e);
        if (r < 0)
                return r;
        KvMetricsServer *s = calloc(1, sizeof *s);
        if (!s)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "metrics: out of memory");
        s->render = render;
        s->userdata = userdata;
        /* The HTTP thread takes no signal: the daemons read theirs from a signalfd, which needs every thread to block
         * them (a thread that did not would die of the first SIGTERM, and the daemon with it). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sin, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned) 16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_END);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!s->d) {
                free(s);
                return kverr_set(e, KV_ERR_IO, -EADDRINUSE,
                                 "%s %s: cannot listen there (in use, or not an address of this node)", key, listen);
        }
        const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        s->port = pi ? pi->port : ntohs(sin.sin_port);
        *ret = s;
        return 0;
}

KvMetricsServer *kv_metrics_server_free(KvMetricsServer *s) {
        if (!s)
                return NULL;
        if (s->d)
                MHD_stop_daemon(s->d);
        free(s);
        return NULL;
}

unsigned kv_metrics_server_port(const KvMetricsServer *s) {
        return s ? s->port : 0;
}
