/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "common/util.h"

/* Writes data to path atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
int write_file_atomic(const char *path, const void *data, size_t len, bool durable) _wur_;
/* Reads a whole file or fd (at most max bytes; -EFBIG beyond). *ret is NUL-terminated. */
int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len) _wur_;
int read_fd_max(int fd, size_t max, char **ret, size_t *ret_len) _wur_;
/* One read(2) of fd appended to *buf (*len bytes of *cap; a NULL *buf with *cap 0 to start), growing it to
 * leave room and keeping it NUL-terminated. Returns 1 when it read something, 0 at EOF, -EFBIG once *len is
 * over max, or read's -errno (-EINTR, -EAGAIN included: the caller decides). For read loops of any kind. */
int read_append(int fd, size_t max, char **buf, size_t *cap, size_t *len) _wur_;
/* read_append() once fd is readable, waiting until deadline (now_usec() clock): -ETIMEDOUT after it. EINTR
 * and EAGAIN are retried; otherwise as read_append(). */
int read_append_until(int fd, size_t max, uint64_t deadline, char **buf, size_t *cap, size_t *len) _wur_;
/* mkdir -p with mode. */
int mkdir_p(const char *path, mode_t mode) _wur_;
int unlink_durable(const char *path, bool durable) _wur_;
/* fsync() of a directory (makes a create, rename or unlink in it durable); of the one that holds path. */
int fsync_dir(const char *dir) _wur_;
int fsync_parent(const char *path) _wur_;
