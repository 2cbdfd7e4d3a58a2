/* SPDX-License-Identifier: Apache-2.0 */
/* The link reaper: a helper thread that deletes retired links (link_retire) in batches, so that the
 * ~20 ms the kernel spends per deleted veth/tap (an RCU grace period under RTNL) is paid once per
 * batch and never inside a CNI DEL. The only work netd does off its event loop. */
#pragma once

#include "common/util.h"

typedef struct Reaper Reaper;

int reaper_new(Reaper **ret) _wur_;
/* Flushes what is queued, stops the thread. */
Reaper *reaper_free(Reaper *r);
/* Queues a reap of the node namespace (netns_fd -1) or of a sandbox (the fd is duplicated). */
int reaper_queue(Reaper *r, int netns_fd) _wur_;
/* Hands fd to the thread, which closes it: for descriptors whose close blocks (an AF_PACKET socket
 * waits for an RCU grace period, ~10 ms). Takes ownership; on -ENOMEM the fd is closed here. */
int reaper_queue_close(Reaper *r, int fd) _wur_;
/* Waits until everything queued so far is deleted. */
void reaper_flush(Reaper *r);
bool reaper_idle(Reaper *r);
unsigned long long reaper_batches(Reaper *r);
