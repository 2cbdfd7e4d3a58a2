/* SPDX-License-Identifier: Apache-2.0 */
/* Unix socket addresses. A path has at most 107 bytes (sun_path is 108 with the NUL); a longer one made
 * under a deep temp, pod or state directory would otherwise fail far from its cause ("No such file or
 * directory" at the client, a listener that never appears). Every socket path kvnet binds or connects to
 * goes through unix_sockaddr(), so the error names the path and the limit where the path is used. */
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include "common/kverr.h"

#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

/* Fills *ret for path (*ret_len: the length to pass to bind/connect; may be NULL). -EINVAL for an empty
 * path, -ENAMETOOLONG for one over UNIX_PATH_MAX_LEN; e (may be NULL) then says so, naming `what` and the
 * path. *ret is untouched on failure. */
int unix_sockaddr(const char *what, const char *path, struct sockaddr_un *ret, socklen_t *ret_len, KvErr *e) _wur_;
