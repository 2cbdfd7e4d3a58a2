/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "common/event.h"
#include "netd/netd.h"

typedef struct Server Server;
int server_new(EventLoop *loop, Manager *m, const char *path, Server **ret, KvErr *e) _wur_;
Server *server_free(Server *srv);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);
