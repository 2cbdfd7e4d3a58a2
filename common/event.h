/* SPDX-License-Identifier: Apache-2.0 */
/* A small single-threaded epoll loop: io sources, one-shot/periodic timers (timerfd), signals (signalfd). */
#pragma once

#include <stdint.h>

#include "common/util.h"

typedef struct EventLoop EventLoop;
typedef struct EventSource EventSource;

/* Return < 0 from a handler to have the loop log nothing and drop the source? No: handlers own their
 * errors; the return value is ignored except that -ECANCELED removes the source. */
typedef int (*event_io_handler_t)(EventSource *s, int fd, uint32_t revents, void *userdata);
typedef int (*event_timer_handler_t)(EventSource *s, void *userdata);
typedef int (*event_signal_handler_t)(EventSource *s, int signo, void *userdata);

int event_loop_new(EventLoop **ret) _wur_;
EventLoop *event_loop_free(EventLoop *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventLoop *, event_loop_free);

int event_add_io(EventLoop *l, int fd, uint32_t events, event_io_handler_t h, void *userdata,
                 EventSource **ret) _wur_;
int event_source_set_io_events(EventSource *s, uint32_t events) _wur_;
/* usec: first expiry relative to now; interval_usec: 0 = one-shot. */
int event_add_timer(EventLoop *l, uint64_t usec, uint64_t interval_usec, event_timer_handler_t h,
                    void *userdata, EventSource **ret) _wur_;
/* Blocks the signal and delivers it through a signalfd. */
int event_add_signal(EventLoop *l, int signo, event_signal_handler_t h, void *userdata, EventSource **ret) _wur_;
/* Removes and frees the source (closes fds it created; io fds are closed only if owned). */
void event_source_free(EventSource *s);
void event_source_set_fd_owned(EventSource *s, bool owned);

int event_loop_run(EventLoop *l) _wur_;
void event_loop_exit(EventLoop *l, int code);
uint64_t now_usec(void);      /* CLOCK_MONOTONIC, microseconds */
uint64_t realtime_usec(void); /* CLOCK_REALTIME (wall clock), microseconds since the epoch */
