/* SPDX-License-Identifier: Apache-2.0 */
#include "common/event.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>

typedef enum { SRC_IO, SRC_TIMER, SRC_SIGNAL } SourceType;

struct EventSource {
        EventLoop *loop;
        SourceType type;
        int fd;
        bool fd_owned;
        int signo;
        void *userdata;
        union {
                event_io_handler_t io;
                event_timer_handler_t timer;
                event_signal_handler_t signal;
        } h;
        bool dead;
        EventSource *next_dead;
        EventSource *prev, *next; /* live sources */
};

struct EventLoop {
        int epfd;
        bool exiting;
        int exit_code;
        EventSource *dead; /* freed after the current dispatch round */
        EventSource *live;
};

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

int event_loop_new(EventLoop **ret) {
        EventLoop *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = negative_errno();
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void free_dead(EventLoop *l) {
        while (l->dead) {
                EventSource *s = l->dead;
                l->dead = s->next_dead;
                free(s);
        }
}

EventLoop *event_loop_free(EventLoop *l) {
        if (!l)
                return NULL;
        while (l->live)
                event_source_free(l->live);
        free_dead(l);
        if (l->epfd >= 0)
                close(l->epfd);
        free(l);
        return NULL;
}

static int add_source(EventLoop *l, SourceType type, int fd, bool owned, uint32_t events, void *userdata,
                      EventSource **ret) {
        EventSource *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->type = type;
        s->fd = fd;
        s->fd_owned = owned;
        s->userdata = userdata;
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                free(s);
                return r;
        }
        s->next = l->live;
        if (l->live)
                l->live->prev = s;
        l->live = s;
        *ret = s;
        return 0;
}

int event_add_io(EventLoop *l, int fd, uint32_t events, event_io_handler_t h, void *userdata,
                 EventSource **ret) {
        EventSource *s;
        int r = add_source(l, SRC_IO, fd, false, events, userdata, &s);
        if (r < 0)
                return r;
        s->h.io = h;
        if (ret)
                *ret = s;
        return 0;
}

int event_source_set_io_events(EventSource *s, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                return negative_errno();
        return 0;
}

int event_add_timer(EventLoop *l, uint64_t usec, uint64_t interval_usec, event_timer_handler_t h,
                    void *userdata, EventSource **ret) {
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (usec == 0)
                usec = 1;
        struct itimerspec its = {
                .it_value = { .tv_sec = (time_t) (usec / 1000000), .tv_nsec = (long) (usec % 1000000) * 1000 },
                .it_interval = { .tv_sec = (time_t) (interval_usec / 1000000),
                                 .tv_nsec = (long) (interval_usec % 1000000) * 1000 },
        };
        if (timerfd_settime(fd, 0, &its, NULL) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        EventSource *s;
        int r = add_source(l, SRC_TIMER, fd, true, EPOLLIN, userdata, &s);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->h.timer = h;
        if (ret)
                *ret = s;
        return 0;
}

int event_add_signal(EventLoop *l, int signo, event_signal_handler_t h, void *userdata, EventSource **ret) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, signo);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        EventSource *s;
        int r = add_source(l, SRC_SIGNAL, fd, true, EPOLLIN, userdata, &s);
        if (r < 0) {
                close(fd);
                return r;
        }
        s->signo = signo;
        s->h.signal = h;
        if (ret)
                *ret = s;
        return 0;
}

void event_source_set_fd_owned(EventSource *s, bool owned) {
        s->fd_owned = owned;
}

void event_source_free(EventSource *s) {
        if (!s || s->dead)
                return;
        epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->fd_owned)
                close(s->fd);
        s->fd = -1;
        s->dead = true;
        if (s->prev)
                s->prev->next = s->next;
        else
                s->loop->live = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->prev = s->next = NULL;
        s->next_dead = s->loop->dead;
        s->loop->dead = s;
}

static void dispatch(EventSource *s, uint32_t revents) {
        int r = 0;
        switch (s->type) {
        case SRC_IO:
                r = s->h.io(s, s->fd, revents, s->userdata);
                break;
        case SRC_TIMER: {
                uint64_t n;
                if (read(s->fd, &n, sizeof n) != sizeof n)
                        return;
                r = s->h.timer(s, s->userdata);
                break;
        }
        case SRC_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(s->fd, &si, sizeof si) != sizeof si)
                        return;
                r = s->h.signal(s, (int) si.ssi_signo, s->userdata);
                break;
        }
        }
        if (r == -ECANCELED)
                event_source_free(s);
}

int event_loop_run(EventLoop *l) {
        struct epoll_event evs[64];
        while (!l->exiting) {
                int n = epoll_wait(l->epfd, evs, (int) ELEMENTSOF(evs), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                for (int i = 0; i < n && !l->exiting; i++) {
                        EventSource *s = evs[i].data.ptr;
                        if (s->dead)
                                continue;
                        dispatch(s, evs[i].events);
                }
                free_dead(l);
        }
        return l->exit_code;
}

void event_loop_exit(EventLoop *l, int code) {
        l->exiting = true;
        l->exit_code = code;
}
