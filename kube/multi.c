/* SPDX-License-Identifier: Apache-2.0 */
/* The client: libcurl's multi interface driven by kvnet's epoll loop. curl tells which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION → io sources) and when to wake it (CURLMOPT_TIMERFUNCTION → a timer); the loop
 * calls curl_multi_socket_action() and the finished transfers complete their operations. */
#include <sys/epoll.h>

#include "kube/kube-priv.h"

#define KUBE_DEFAULT_QPS 5
#define KUBE_DEFAULT_BURST 10
#define KUBE_DEFAULT_TIMEOUT_MS 30000

void kube_multi_drain(CURLM *m) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                KubeOp *op = NULL;
                CURLcode cc = msg->data.result;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &op);
                curl_multi_remove_handle(m, msg->easy_handle);
                op->in_multi = false;
                if (op->cancelled)
                        kube_op_free(op);
                else
                        op->finish(op, cc);
        }
}

static void socket_action(KubeClient *c, curl_socket_t fd, int ev_bitmask) {
        int running;
        c->in_curl = true;
        curl_multi_socket_action(c->multi, fd, ev_bitmask, &running);
        c->in_curl = false;
        kube_multi_drain(c->multi);
}

static int on_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        int ev = 0;
        if (revents & EPOLLIN)
                ev |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                ev |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                ev |= CURL_CSELECT_ERR;
        socket_action(userdata, fd, ev);
        return 0;
}

static int on_timer(EventSource *s, void *userdata) {
        KubeClient *c = userdata;
        if (c->timer == s) {
                event_source_free(s);
                c->timer = NULL;
        }
        socket_action(c, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        KubeClient *c = userp;
        EventSource *src = socketp;
        (void) easy;
        if (what == CURL_POLL_REMOVE) {
                event_source_free(src);
                curl_multi_assign(c->multi, fd, NULL);
                return 0;
        }
        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        if (src)
                return event_source_set_io_events(src, events) < 0 ? -1 : 0;
        if (event_add_io(c->loop, fd, events, on_io, c, &src) < 0)
                return -1;
        curl_multi_assign(c->multi, fd, src);
        return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
        KubeClient *c = userp;
        (void) multi;
        if (c->timer) {
                event_source_free(c->timer);
                c->timer = NULL;
        }
        if (timeout_ms < 0)
                return 0;
        return event_add_timer(c->loop, (uint64_t) timeout_ms * 1000, 0, on_timer, c, &c->timer) < 0 ? -1 : 0;
}

int kube_client_new(const KubeConfig *cfg, EventLoop *loop, KubeClient **ret, KvErr *e) {
        int r = kube_curl_load(e);
        if (r < 0)
                return r;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return kverr_set(e, KV_ERR_INTERNAL, -EIO, "kube: libcurl did not initialise");
        KubeClient *c = calloc(1, sizeof *c);
        if (!c) {
                curl_global_cleanup();
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
        }
        r = kube_config_copy(cfg, &c->cfg);
        if (r < 0) {
                kube_client_free(c);
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "kube: %s",
                                 r == -EINVAL ? "the config has no server" : "out of memory");
        }
        c->loop = loop;
        c->timeout_ms = KUBE_DEFAULT_TIMEOUT_MS;
        kv_token_bucket_init(&c->rl, KUBE_DEFAULT_QPS, KUBE_DEFAULT_BURST, now_usec());
        if (loop) {
                if (!(c->multi = curl_multi_init())) {
                        kube_client_free(c);
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kube: out of memory");
                }
                curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
                curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
                curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
                curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
        }
        *ret = c;
        return 0;
}

KubeClient *kube_client_free(KubeClient *c) {
        if (!c)
                return NULL;
        while (c->ops)
                kube_op_free(c->ops);
        if (c->multi) { /* closing its connections must not arm a new timer */
                curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
                curl_multi_cleanup(c->multi);
        }
        if (c->sync_multi)
                curl_multi_cleanup(c->sync_multi);
        if (c->timer)
                event_source_free(c->timer);
        kube_config_free(c->cfg);
        free(c);
        curl_global_cleanup();
        return NULL;
}

void kube_client_set_rate_limit(KubeClient *c, double qps, unsigned burst) {
        kv_token_bucket_init(&c->rl, qps, burst, now_usec());
}

void kube_client_set_timeout(KubeClient *c, unsigned msec) {
        c->timeout_ms = msec;
}

const KubeConfig *kube_client_config(const KubeClient *c) {
        return c->cfg;
}

static int on_delay(EventSource *s, void *userdata) {
        KubeOp *op = userdata;
        (void) s;
        event_source_free(op->delay);
        op->delay = NULL;
        if (op->cancelled) {
                kube_op_free(op);
                return 0;
        }
        CURLMcode mc = curl_multi_add_handle(op->multi, op->easy);
        if (mc != CURLM_OK) {
                snprintf(op->errbuf, sizeof op->errbuf, "%s", curl_multi_strerror(mc));
                op->finish(op, CURLE_FAILED_INIT);
                return 0;
        }
        op->in_multi = true;
        return 0;
}

int kube_op_start(KubeOp *op) {
        KubeClient *c = op->c;
        uint64_t wait = kv_token_bucket_reserve(&c->rl, now_usec());
        if (op->multi != c->multi) { /* kube_request_sync: blocking is its point */
                if (wait)
                        usleep((useconds_t) wait);
        } else if (wait || c->in_curl) /* a handle cannot be added from inside curl: later, from the loop */
                return event_add_timer(c->loop, wait, 0, on_delay, op, &op->delay);
        if (curl_multi_add_handle(op->multi, op->easy) != CURLM_OK)
                return -EIO;
        op->in_multi = true;
        return 0;
}

void kube_op_stop(KubeOp *op) {
        if (op->delay) {
                event_source_free(op->delay);
                op->delay = NULL;
        }
        if (op->in_multi) {
                curl_multi_remove_handle(op->multi, op->easy);
                op->in_multi = false;
        }
}

void kube_op_cancel(KubeOp *op) {
        if (!op)
                return;
        if (op->c->in_curl && op->in_multi) {
                /* inside curl's callbacks: its write function aborts the transfer, and the loop frees it (the
                 * timer, for a transfer that has nothing more to write) */
                op->cancelled = true;
                if (!op->delay)
                        IGNORE_RESULT(event_add_timer(op->c->loop, 0, 0, on_delay, op, &op->delay));
                return;
        }
        kube_op_free(op);
}
