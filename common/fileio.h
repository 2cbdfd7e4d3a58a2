/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "common/util.h"

/* Writes data to path atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
int write_file_atomic(const char *path, const void *data, size_t len, bool durable) _wur_;
/* Reads a whole file or fd (at most max bytes; -EFBIG beyond). *ret is NUL-terminated. */
int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len) _wur_;
int read_fd_max(int fd, size_t max, char **ret, size_t *ret_len) _wur_;
/* mkdir -p with mode. */
int mkdir_p(const char *path, mode_t mode) _wur_;
int unlink_durable(const char *path, bool durable) _wur_;
/* fsync() of a directory (makes a create, rename or unlink in it durable); of the one that holds path. */
int fsync_dir(const char *dir) _wur_;
int fsync_parent(const char *path) _wur_;
