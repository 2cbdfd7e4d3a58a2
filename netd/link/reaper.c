/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/link/reaper.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "common/array.h"
#include "common/log.h"
#include "netd/link/link.h"

#define REAP_BATCH_WINDOW_NS (2 * 1000 * 1000)

struct Reaper {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake, done;
        bool stop, node_pending, busy;
        int *fds;
        size_t n_fds, cap_fds;
        int *cfds; /* reaper_queue_close() */
        size_t n_cfds, cap_cfds;
        unsigned long long batches;
};

static void *reaper_main(void *arg) {
        Reaper *r = arg;
        pthread_mutex_lock(&r->lock);
        for (;;) {
                while (!r->stop && !r->node_pending && r->n_fds == 0 && r->n_cfds == 0)
                        pthread_cond_wait(&r->wake, &r->lock);
                if (!r->node_pending && r->n_fds == 0 && r->n_cfds == 0 && r->stop)
                        break;
                r->busy = true;
                pthread_mutex_unlock(&r->lock);

                /* Let DELs that arrive together share one kernel batch. */
                struct timespec ts = { 0, REAP_BATCH_WINDOW_NS };
                nanosleep(&ts, NULL);

                pthread_mutex_lock(&r->lock);
                bool node = r->node_pending;
                int *fds = r->fds;
                size_t n = r->n_fds;
                int *cfds = r->cfds;
                size_t nc = r->n_cfds;
                r->node_pending = false;
                r->fds = NULL;
                r->n_fds = r->cap_fds = 0;
                r->cfds = NULL;
                r->n_cfds = r->cap_cfds = 0;
                pthread_mutex_unlock(&r->lock);

                for (size_t i = 0; i < nc; i++)
                        close(cfds[i]);
                free(cfds);

                KvErr e = {};
                if (node && link_reap(-1, &e) < 0)
                        log_warning("reaper: %s", e.msg);
                for (size_t i = 0; i < n; i++) {
                        kverr_clear(&e);
                        /* A sandbox that is gone took its links with it. */
                        if (link_reap(fds[i], &e) < 0 && e.code != KV_ERR_INVALID_ENV)
                                log_warning("reaper: %s", e.msg);
                        close(fds[i]);
                }
                free(fds);

                pthread_mutex_lock(&r->lock);
                r->busy = false;
                r->batches++;
                pthread_cond_broadcast(&r->done);
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

int reaper_new(Reaper **ret) {
        Reaper *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->wake, NULL);
        pthread_cond_init(&r->done, NULL);
        /* The thread takes no signals: they belong to the event loop's signalfd. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int q = pthread_create(&r->thread, NULL, reaper_main, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (q != 0) {
                free(r);
                return -q;
        }
        *ret = r;
        return 0;
}

Reaper *reaper_free(Reaper *r) {
        if (!r)
                return NULL;
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_broadcast(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
        for (size_t i = 0; i < r->n_fds; i++)
                close(r->fds[i]);
        free(r->fds);
        for (size_t i = 0; i < r->n_cfds; i++)
                close(r->cfds[i]);
        free(r->cfds);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        pthread_cond_destroy(&r->done);
        free(r);
        return NULL;
}

static int push_fd(int **v, size_t *n, size_t *cap, int fd) {
        int r = ARRAY_GROW(*v, *cap, *n + 1);
        if (r < 0)
                return r;
        (*v)[(*n)++] = fd;
        return 0;
}

int reaper_queue_close(Reaper *r, int fd) {
        if (fd < 0)
                return -EBADF;
        pthread_mutex_lock(&r->lock);
        int q = push_fd(&r->cfds, &r->n_cfds, &r->cap_cfds, fd);
        if (q == 0)
                pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        if (q < 0)
                close(fd);
        return q;
}

int reaper_queue(Reaper *r, int netns_fd) {
        int fd = -1;
        if (netns_fd >= 0) {
                fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return negative_errno();
        }
        pthread_mutex_lock(&r->lock);
        if (fd < 0)
                r->node_pending = true;
        else if (push_fd(&r->fds, &r->n_fds, &r->cap_fds, fd) < 0) {
                pthread_mutex_unlock(&r->lock);
                close(fd);
                return -ENOMEM;
        }
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        return 0;
}

void reaper_flush(Reaper *r) {
        pthread_mutex_lock(&r->lock);
        while (r->busy || r->node_pending || r->n_fds > 0 || r->n_cfds > 0)
                pthread_cond_wait(&r->done, &r->lock);
        pthread_mutex_unlock(&r->lock);
}

bool reaper_idle(Reaper *r) {
        pthread_mutex_lock(&r->lock);
        bool idle = !r->busy && !r->node_pending && r->n_fds == 0 && r->n_cfds == 0;
        pthread_mutex_unlock(&r->lock);
        return idle;
}

unsigned long long reaper_batches(Reaper *r) {
        pthread_mutex_lock(&r->lock);
        unsigned long long b = r->batches;
        pthread_mutex_unlock(&r->lock);
        return b;
}
