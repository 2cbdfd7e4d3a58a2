/* SPDX-License-Identifier: Apache-2.0 */
/* Temporary directories of unit tests: made with mkdtemp(), removed with everything below them. */
#pragma once

#include <ftw.h>
#include <stdio.h>

static int tmpdir_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

static inline int tmpdir_remove(const char *dir) {
        return nftw(dir, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
