/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/reconciler.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "controller/metrics.h"

struct CtlReconciler {
        EventLoop *loop;
        CtlStore *store;
        ctl_reconcile_fn fns[CTL_RECONCILE_MAX];
        size_t n_fns;
        EventSource *pending; /* the deferred pass, when one is scheduled */
        bool in_pass;         /* a pass runs: a change now (its own writes too) asks for the next one */
        atomic_bool again;    /* ... and one did (set by the pass's thread too) */
        uint64_t next_usec;   /* CLOCK_MONOTONIC: no pass starts before this (0: any time) */
        uint64_t start_usec;  /* when the running pass started */
        /* threaded: each pass on a thread of its own, its end told to the loop through an eventfd */
        bool threaded;
        pthread_t thread;
        int done_fd;
        EventSource *done_src;
        ctl_pass_done_fn after_pass;
        void *after_data;
};

static int on_pass(EventSource *src, void *userdata);

static void schedule(CtlReconciler *c) {
        uint64_t now = now_usec();
        /* a first change after a quiet spell is taken at once (well, on the next turn of the loop) */
        uint64_t delay = c->next_usec > now ? c->next_usec - now : 1;
        if (event_add_timer(c->loop, delay, 0, on_pass, c, &c->pending) < 0)
                c->pending = NULL;
}

static void run_fns(CtlReconciler *c) {
        CtlMetrics *m = ctl_store_metrics(c->store);
        for (size_t i = 0; i < c->n_fns; i++) {
                uint64_t t0 = m ? now_usec() : 0;
                int r = c->fns[i](c->store);
                if (m)
                        ctl_metrics_reconcile(m, i, r, now_usec() - t0);
        }
        /* the gauges as this pass leaves the store (in cluster mode only the pass may read it now) */
        ctl_metrics_snapshot(m, c->store);
}

/* On the loop, after the pass's functions: the next pass's earliest start, and the next pass when one is due. */
static void pass_ended(CtlReconciler *c) {
        uint64_t end = now_usec(), took = end - c->start_usec;
        c->in_pass = false;
        /* the changes made meanwhile (this pass's own writes) and from now on (the API's requests) wait for the
         * next pass, at least CTL_PASS_GAP_USEC away, or as long as this one took: under a stream of changes
         * the passes leave the API at least half of the time, and each one takes in all that came before it */
        c->next_usec = end + (took > CTL_PASS_GAP_USEC ? took : CTL_PASS_GAP_USEC);
        if (took >= CTL_PASS_SLOW_USEC)
                log_info("controllers: a pass took %llu ms", (unsigned long long) (took / 1000));
        if (c->after_pass)
                c->after_pass(c->after_data); /* its changes of the store (on_change) ask for a pass themselves */
        if (atomic_exchange(&c->again, false) && !c->pending)
                schedule(c);
}

static void *pass_thread(void *userdata) {
        CtlReconciler *c = userdata;
        run_fns(c);
        uint64_t one = 1;
        /* an eventfd write of 8 bytes fails only on overflow, which one value a pass cannot reach */
        IGNORE_RESULT(write(c->done_fd, &one, sizeof one));
        return NULL;
}

/* The thread has written to done_fd before it returns: after the join, the read finds its value. */
static void pass_join(CtlReconciler *c) {
        uint64_t v;
        pthread_join(c->thread, NULL);
        IGNORE_RESULT(read(c->done_fd, &v, sizeof v));
}

static int on_pass_done(EventSource *src, int fd, uint32_t revents, void *userdata) {
        CtlReconciler *c = userdata;
        (void) src, (void) fd, (void) revents;
        if (!c->in_pass)
                return 0;
        pass_join(c);
        pass_ended(c);
        return 0;
}

static int on_pass(EventSource *src, void *userdata) {
        CtlReconciler *c = userdata;
        (void) src;
        c->pending = NULL;
        c->in_pass = true;
        atomic_store(&c->again, false);
        c->start_usec = now_usec();
        if (c->threaded) {
                int r = pthread_create(&c->thread, NULL, pass_thread, c);
                if (r == 0)
                        return -ECANCELED;
                /* no thread (out of memory, a process limit): this pass on the loop, as without one */
                log_warning("controllers: cannot start the pass's thread: %s; running it on the loop", strerror(r));
        }
        run_fns(c);
        pass_ended(c);
        return -ECANCELED;
}

/* From the pass's own thread too, while in_pass (which only the loop changes, and not during a pass). */
static void on_change(void *userdata) {
        CtlReconciler *c = userdata;
        if (c->in_pass)
                atomic_store(&c->again, true);
        else if (!c->pending) /* else that pass will see this change too */
                schedule(c);
}

int ctl_reconciler_new(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                       CtlReconciler **ret) {
        return ctl_reconciler_new_threaded(loop, store, fns, n_fns, NULL, NULL, false, ret);
}

int ctl_reconciler_new_threaded(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                                ctl_pass_done_fn after_pass, void *userdata, bool threaded, CtlReconciler **ret) {
        if (n_fns == 0 || n_fns > CTL_RECONCILE_MAX)
                return -EINVAL;
        CtlReconciler *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (CtlReconciler){ .loop = loop, .store = store, .n_fns = n_fns, .threaded = threaded, .done_fd = -1,
                              .after_pass = after_pass, .after_data = userdata };
        memcpy(c->fns, fns, n_fns * sizeof *fns);
        int r;
        if (threaded) {
                if ((c->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
                    (r = event_add_io(loop, c->done_fd, EPOLLIN, on_pass_done, c, &c->done_src)) < 0) {
                        r = c->done_fd < 0 ? -errno : r;
                        if (c->done_fd >= 0)
                                close(c->done_fd);
                        free(c);
                        return r;
                }
        }
        r = ctl_store_add_notify(store, on_change, c);
        if (r < 0) {
                ctl_reconciler_free(c);
                return r;
        }
        on_change(c); /* a first pass over what was stored before the start */
        *ret = c;
        return 0;
}

CtlReconciler *ctl_reconciler_free(CtlReconciler *c) {
        if (!c)
                return NULL;
        if (c->threaded && c->in_pass) {
                /* the pass's thread ends with its functions: the caller has made its writes fail at once (cluster
                 * mode: fenced when the lease is lost) or lets it finish them */
                pass_join(c);
                c->in_pass = false;
        }
        ctl_store_remove_notify(c->store, on_change, c);
        if (c->pending)
                event_source_free(c->pending);
        if (c->done_src)
                event_source_free(c->done_src);
        if (c->done_fd >= 0)
                close(c->done_fd);
        free(c);
        return NULL;
}

bool ctl_reconciler_in_pass(const CtlReconciler *c) {
        return c && c->in_pass;
}
