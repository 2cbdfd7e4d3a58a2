/* SPDX-License-Identifier: Apache-2.0 */
#include "common/unixsock.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

int unix_sockaddr(const char *what, const char *path, struct sockaddr_un *ret, socklen_t *ret_len, KvErr *e) {
        size_t n = path ? strlen(path) : 0;
        if (n == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: empty unix socket path", what);
        if (n > UNIX_PATH_MAX_LEN)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENAMETOOLONG,
                                 "%s: unix socket path is %zu bytes, over the %zu that sun_path allows: '%.200s%s'",
                                 what, n, (size_t) UNIX_PATH_MAX_LEN, path, n > 200 ? "..." : "");
        memset(ret, 0, sizeof *ret);
        ret->sun_family = AF_UNIX;
        memcpy(ret->sun_path, path, n + 1);
        if (ret_len)
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}
