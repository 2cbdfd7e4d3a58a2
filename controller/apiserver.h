/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded Kubernetes API (docs/controller.md): the subset of the REST API kubectl uses for kvnet's
 * resources — discovery (/version, /api, /apis, /apis/GROUP[/VERSION]), get, list, create, replace,
 * JSON merge patch, delete, and watch as a chunked stream of events — served over HTTP on a loopback
 * address from the controller's event loop (libmicrohttpd in external-epoll mode). */
#pragma once

#include "common/event.h"
#include "common/kverr.h"
#include "controller/store.h"

#define CTL_BODY_MAX (3 * 1024 * 1024) /* the API server's request size limit (Kubernetes: 3 MiB) */

typedef struct CtlApi CtlApi;

/* listen: "ADDR:PORT" on a loopback address; port 0 picks one. tls_dir: HTTPS with the certificate kept there
 * (controller/tls.h); NULL: plain HTTP. */
int ctl_api_new(EventLoop *loop, CtlStore *store, const char *listen, const char *tls_dir, CtlApi **ret,
                KvErr *e) _wur_;
/* How many watches may be open at once (default CTL_WATCH_MAX, 512); one more is answered 429 TooManyRequests. */
void ctl_api_set_max_watches(CtlApi *a, unsigned n);
CtlApi *ctl_api_free(CtlApi *a);
/* The port it listens on. */
unsigned ctl_api_port(const CtlApi *a);
/* "https" (a tls_dir was given) or "http", and the address it listens on: the URL its clients use. */
const char *ctl_api_scheme(const CtlApi *a);
const char *ctl_api_host(const CtlApi *a);
/* Every request but /version and the health checks must carry "Authorization: Bearer <token>", the token kept in
 * path (64 hex digits, 0600; made with getrandom() when absent, so that a restart keeps its clients' kubeconfigs
 * working). */
int ctl_api_use_token_file(CtlApi *a, const char *path, KvErr *e) _wur_;
/* Writes a kubeconfig for kubectl (cluster/user/context "kvnet", namespace default, the token) to path (0600). */
int ctl_api_write_kubeconfig(const CtlApi *a, const char *path, KvErr *e) _wur_;
