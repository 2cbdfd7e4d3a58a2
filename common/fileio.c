/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fileio.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/array.h"
#include "common/event.h"

#define READ_APPEND_ROOM 2048

int fsync_dir(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

int fsync_parent(const char *path) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        return fsync_dir(dirname(buf));
}

int write_file_atomic(const char *path, const void *data, size_t len, bool durable) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int) getpid()) >= (int) sizeof tmp)
                return -ENAMETOOLONG;

        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();

        const char *p = data;
        size_t left = len;
        while (left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = negative_errno();
                        unlink(tmp);
                        return r;
                }
                p += n;
                left -= (size_t) n;
        }
        if (durable && fdatasync(fd) < 0) {
                int r = negative_errno();
                unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                int r = negative_errno();
                unlink(tmp);
                return r;
        }
        return durable ? fsync_parent(path) : 0;
}

int read_append(int fd, size_t max, char **buf, size_t *cap, size_t *len) {
        int r = ARRAY_GROW(*buf, *cap, *len + READ_APPEND_ROOM + 1);
        if (r < 0)
                return r;
        ssize_t n = read(fd, *buf + *len, *cap - *len - 1);
        if (n < 0)
                return negative_errno();
        *len += (size_t) n;
        (*buf)[*len] = '\0';
        if (*len > max)
                return -EFBIG;
        return n > 0;
}

int read_append_until(int fd, size_t max, uint64_t deadline, char **buf, size_t *cap, size_t *len) {
        for (;;) {
                uint64_t now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                uint64_t left_ms = (deadline - now + 999) / 1000;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, left_ms > INT_MAX ? INT_MAX : (int) left_ms);
                if (r < 0 && errno != EINTR)
                        return negative_errno();
                if (r <= 0)
                        continue;
                r = read_append(fd, max, buf, cap, len);
                if (r != -EINTR && r != -EAGAIN)
                        return r;
        }
}

int read_fd_max(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0, len = 0;
        for (;;) {
                int r = read_append(fd, max, &buf, &cap, &len);
                if (r == -EINTR)
                        continue;
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return read_fd_max(fd, max, ret, ret_len);
}

int mkdir_p(const char *path, mode_t mode) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int unlink_durable(const char *path, bool durable) {
        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return 0;
                return negative_errno();
        }
        return durable ? fsync_parent(path) : 0;
}
