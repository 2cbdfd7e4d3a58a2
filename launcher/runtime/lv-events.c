/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet's epoll loop (common/event.c) as libvirt's event implementation (virEventRegisterImpl):
 * handles -> io sources (an fd whose events libvirt sets to 0 is taken out of epoll, since epoll
 * would still report HUP/ERR), timeouts -> timerfd sources (frequency 0 = "every iteration", a
 * 1 us periodic timer). libvirt's free callbacks must not run inside remove*(): they are deferred
 * to a one-shot timer, as libvirt's default implementation does. */
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "common/log.h"
#include "launcher/runtime/runtime.h"

struct LvWatch {
        int id;
        int fd;
        int events; /* VIR_EVENT_HANDLE_* */
        virEventHandleCallback cb;
        void *opaque;
        virFreeCallback ff;
        EventSource *src;
        bool deleted;
        bool dirty; /* changed from another thread: the loop thread applies it */
        struct LvWatch *next;
};

struct LvTimeout {
        int id;
        int frequency; /* ms; -1 disabled */
        virEventTimeoutCallback cb;
        void *opaque;
        virFreeCallback ff;
        EventSource *src;
        bool deleted;
        bool dirty;
        struct LvTimeout *next;
};

/* virEventRegisterImpl() takes no user data, so the implementation needs one process-wide pointer. */
static LvEvents *lv_events;

static uint32_t lv_to_epoll(int ev) {
        uint32_t e = 0;
        if (ev & VIR_EVENT_HANDLE_READABLE)
                e |= EPOLLIN;
        if (ev & VIR_EVENT_HANDLE_WRITABLE)
                e |= EPOLLOUT;
        return e;
}

static int lv_from_epoll(uint32_t e) {
        int ev = 0;
        if (e & EPOLLIN)
                ev |= VIR_EVENT_HANDLE_READABLE;
        if (e & EPOLLOUT)
                ev |= VIR_EVENT_HANDLE_WRITABLE;
        if (e & EPOLLERR)
                ev |= VIR_EVENT_HANDLE_ERROR;
        if (e & EPOLLHUP)
                ev |= VIR_EVENT_HANDLE_HANGUP;
        return ev;
}

static bool lv_on_owner(void) {
        return pthread_equal(pthread_self(), lv_events->owner);
}

static void lv_wake(LvEvents *le) {
        uint64_t one = 1;
        if (write(le->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
                log_debug("wake the event loop: %m");
}

/* Loop thread only. */
static void lv_reap(LvEvents *le) {
        LvWatch *dw = NULL;
        LvTimeout *dt = NULL;
        pthread_mutex_lock(&le->lock);
        for (LvWatch **w = &le->watches; *w;) {
                if ((*w)->deleted) {
                        LvWatch *d = *w;
                        *w = d->next;
                        if (d->src)
                                event_source_free(d->src);
                        d->next = dw;
                        dw = d;
                } else
                        w = &(*w)->next;
        }
        for (LvTimeout **t = &le->timeouts; *t;) {
                if ((*t)->deleted) {
                        LvTimeout *d = *t;
                        *t = d->next;
                        if (d->src)
                                event_source_free(d->src);
                        d->next = dt;
                        dt = d;
                } else
                        t = &(*t)->next;
        }
        pthread_mutex_unlock(&le->lock);
        while (dw) {
                LvWatch *d = dw;
                dw = d->next;
                if (d->ff)
                        d->ff(d->opaque);
                free(d);
        }
        while (dt) {
                LvTimeout *d = dt;
                dt = d->next;
                if (d->ff)
                        d->ff(d->opaque);
                free(d);
        }
}

static int on_reaper(EventSource *s, void *userdata) {
        LvEvents *le = userdata;
        (void) s;
        le->reaper = NULL;
        lv_reap(le);
        return -ECANCELED;
}

/* Loop thread only. */
static void lv_schedule_reap(LvEvents *le) {
        if (le->reaper)
                return;
        if (event_add_timer(le->loop, 1, 0, on_reaper, le, &le->reaper) < 0)
                le->reaper = NULL; /* reaped at teardown instead */
}

static int on_watch(EventSource *s, int fd, uint32_t revents, void *userdata) {
        LvWatch *w = userdata;
        (void) s;
        pthread_mutex_lock(&lv_events->lock);
        bool live = !w->deleted && w->cb && (w->events & (VIR_EVENT_HANDLE_READABLE | VIR_EVENT_HANDLE_WRITABLE));
        virEventHandleCallback cb = w->cb;
        int id = w->id;
        void *opaque = w->opaque;
        pthread_mutex_unlock(&lv_events->lock);
        if (live)
                cb(id, fd, lv_from_epoll(revents), opaque);
        return 0;
}

static int lv_watch_apply(LvWatch *w) {
        uint32_t want = lv_to_epoll(w->events);
        if (want == 0) {
                if (w->src) {
                        event_source_free(w->src);
                        w->src = NULL;
                }
                return 0;
        }
        if (w->src)
                return event_source_set_io_events(w->src, want);
        return event_add_io(lv_events->loop, w->fd, want, on_watch, w, &w->src);
}

static int lv_add_handle(int fd, int events, virEventHandleCallback cb, void *opaque, virFreeCallback ff) {
        if (!lv_events)
                return -1;
        LvWatch *w = calloc(1, sizeof *w);
        if (!w)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        *w = (LvWatch){ .id = ++lv_events->next_id, .fd = fd, .events = events, .cb = cb, .opaque = opaque, .ff = ff };
        if (lv_on_owner()) {
                if (lv_watch_apply(w) < 0) {
                        pthread_mutex_unlock(&lv_events->lock);
                        free(w);
                        return -1;
                }
        } else {
                w->dirty = true;
                lv_wake(lv_events);
        }
        w->next = lv_events->watches;
        lv_events->watches = w;
        int id = w->id;
        pthread_mutex_unlock(&lv_events->lock);
        return id;
}

static LvWatch *lv_find_watch(int id) {
        if (!lv_events)
                return NULL;
        for (LvWatch *w = lv_events->watches; w; w = w->next)
                if (w->id == id && !w->deleted)
                        return w;
        return NULL;
}

static void lv_update_handle(int id, int events) {
        if (!lv_events)
                return;
        pthread_mutex_lock(&lv_events->lock);
        LvWatch *w = lv_find_watch(id);
        if (w) {
                w->events = events;
                if (!lv_on_owner()) {
                        w->dirty = true;
                        lv_wake(lv_events);
                } else if (lv_watch_apply(w) < 0)
                        log_warning("libvirt event loop: cannot watch fd %d", w->fd);
        }
        pthread_mutex_unlock(&lv_events->lock);
}

static int lv_remove_handle(int id) {
        if (!lv_events)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        LvWatch *w = lv_find_watch(id);
        if (!w) {
                pthread_mutex_unlock(&lv_events->lock);
                return -1;
        }
        w->deleted = true;
        bool owner = lv_on_owner();
        if (owner && w->src) {
                event_source_free(w->src);
                w->src = NULL;
        }
        if (!owner) {
                w->dirty = true;
                lv_wake(lv_events);
        }
        pthread_mutex_unlock(&lv_events->lock);
        if (owner)
                lv_schedule_reap(lv_events);
        return 0;
}

static int on_timeout(EventSource *s, void *userdata) {
        LvTimeout *t = userdata;
        (void) s;
        pthread_mutex_lock(&lv_events->lock);
        bool live = !t->deleted && t->frequency >= 0 && t->cb;
        virEventTimeoutCallback cb = t->cb;
        int id = t->id;
        void *opaque = t->opaque;
        pthread_mutex_unlock(&lv_events->lock);
        if (live)
                cb(id, opaque);
        return 0;
}

static int lv_timeout_apply(LvTimeout *t) {
        if (t->src) {
                event_source_free(t->src);
                t->src = NULL;
        }
        if (t->frequency < 0)
                return 0;
        uint64_t usec = t->frequency == 0 ? 1 : (uint64_t) t->frequency * 1000;
        return event_add_timer(lv_events->loop, usec, usec, on_timeout, t, &t->src);
}

static int lv_add_timeout(int frequency, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff) {
        if (!lv_events)
                return -1;
        LvTimeout *t = calloc(1, sizeof *t);
        if (!t)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        *t = (LvTimeout){ .id = ++lv_events->next_id, .frequency = frequency, .cb = cb, .opaque = opaque, .ff = ff };
        if (lv_on_owner()) {
                if (lv_timeout_apply(t) < 0) {
                        pthread_mutex_unlock(&lv_events->lock);
                        free(t);
                        return -1;
                }
        } else {
                t->dirty = true;
                lv_wake(lv_events);
        }
        t->next = lv_events->timeouts;
        lv_events->timeouts = t;
        int id = t->id;
        pthread_mutex_unlock(&lv_events->lock);
        return id;
}

static LvTimeout *lv_find_timeout(int id) {
        if (!lv_events)
                return NULL;
        for (LvTimeout *t = lv_events->timeouts; t; t = t->next)
                if (t->id == id && !t->deleted)
                        return t;
        return NULL;
}

static void lv_update_timeout(int id, int frequency) {
        if (!lv_events)
                return;
        pthread_mutex_lock(&lv_events->lock);
        LvTimeout *t = lv_find_timeout(id);
        if (t) {
                t->frequency = frequency;
                if (!lv_on_owner()) {
                        t->dirty = true;
                        lv_wake(lv_events);
                } else if (lv_timeout_apply(t) < 0)
                        log_warning("libvirt event loop: cannot arm timer %d", id);
        }
        pthread_mutex_unlock(&lv_events->lock);
}

static int lv_remove_timeout(int id) {
        if (!lv_events)
                return -1;
        pthread_mutex_lock(&lv_events->lock);
        LvTimeout *t = lv_find_timeout(id);
        if (!t) {
                pthread_mutex_unlock(&lv_events->lock);
                return -1;
        }
        t->deleted = true;
        bool owner = lv_on_owner();
        if (owner && t->src) {
                event_source_free(t->src);
                t->src = NULL;
        }
        if (!owner) {
                t->dirty = true;
                lv_wake(lv_events);
        }
        pthread_mutex_unlock(&lv_events->lock);
        if (owner)
                lv_schedule_reap(lv_events);
        return 0;
}

/* Loop thread: applies what other threads changed. */
static int on_lv_wake(EventSource *s, int fd, uint32_t revents, void *userdata) {
        LvEvents *le = userdata;
        uint64_t n;
        bool reap = false;
        (void) s;
        (void) revents;
        if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
                return 0;
        pthread_mutex_lock(&le->lock);
        for (LvWatch *w = le->watches; w; w = w->next) {
                if (!w->dirty)
                        continue;
                w->dirty = false;
                if (w->deleted) {
                        if (w->src)
                                event_source_free(w->src);
                        w->src = NULL;
                        reap = true;
                } else if (lv_watch_apply(w) < 0)
                        log_warning("libvirt event loop: cannot watch fd %d", w->fd);
        }
        for (LvTimeout *t = le->timeouts; t; t = t->next) {
                if (!t->dirty)
                        continue;
                t->dirty = false;
                if (t->deleted) {
                        if (t->src)
                                event_source_free(t->src);
                        t->src = NULL;
                        reap = true;
                } else if (lv_timeout_apply(t) < 0)
                        log_warning("libvirt event loop: cannot arm timer %d", t->id);
        }
        pthread_mutex_unlock(&le->lock);
        if (reap)
                lv_schedule_reap(le);
        return 0;
}

static void lv_events_done(LvEvents *le) {
        for (LvWatch *w = le->watches; w; w = w->next) {
                if (w->src)
                        event_source_free(w->src);
                w->src = NULL;
                w->deleted = true;
        }
        for (LvTimeout *t = le->timeouts; t; t = t->next) {
                if (t->src)
                        event_source_free(t->src);
                t->src = NULL;
                t->deleted = true;
        }
        if (le->reaper)
                event_source_free(le->reaper);
        le->reaper = NULL;
        lv_reap(le);
        if (le->wake_src)
                event_source_free(le->wake_src);
        le->wake_src = NULL;
        if (le->wake_fd >= 0)
                close(le->wake_fd);
        le->wake_fd = -1;
}

int lv_events_register(LvEvents *le, EventLoop *loop) {
        le->loop = loop;
        pthread_mutex_init(&le->lock, NULL);
        le->owner = pthread_self();
        le->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (le->wake_fd < 0)
                return negative_errno();
        int r = event_add_io(loop, le->wake_fd, EPOLLIN, on_lv_wake, le, &le->wake_src);
        if (r < 0) {
                close(le->wake_fd);
                le->wake_fd = -1;
                return r;
        }
        lv_events = le;
        virEventRegisterImpl(lv_add_handle, lv_update_handle, lv_remove_handle, lv_add_timeout, lv_update_timeout,
                             lv_remove_timeout);
        return 0;
}

/* Teardown after virConnectClose: whatever libvirt did not remove is released here. */
void lv_events_unregister(LvEvents *le) {
        if (lv_events == le) {
                lv_events_done(le);
                /* libvirt keeps our callbacks registered; with lv_events gone they are inert. */
                lv_events = NULL;
        }
        if (le->loop)
                pthread_mutex_destroy(&le->lock);
}
