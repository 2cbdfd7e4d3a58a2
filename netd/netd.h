/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-netd: the node network daemon. Public surface: the socket protocol (docs/protocol.md) and
 * the Manager that serves it. */
#pragma once

#include <jansson.h>

#include "common/event.h"
#include "common/kverr.h"

typedef struct Manager Manager;

typedef struct NetdOptions {
        const char *socket_path;
        const char *state_dir;
        const char *config_path;
        bool durable; /* fsync state (default true) */
} NetdOptions;

/* loop may be NULL (no guest DHCP then: unit tests). */
int manager_new(const NetdOptions *opts, EventLoop *loop, Manager **ret, KvErr *e) _wur_;
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
/* Loads state and reconciles the kernel against it (does not disturb flowing traffic). */
int manager_start(Manager *m, KvErr *e) _wur_;
/* Handles one request object; returns the reply object (never NULL unless out of memory). */
json_t *manager_handle(Manager *m, json_t *request);
