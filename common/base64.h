/* SPDX-License-Identifier: Apache-2.0 */
/* Standard base64 (RFC 4648 section 4, with padding): the CNI cache's config bytes, a kubeconfig's *-data
 * fields, cloud-init's userDataBase64. One codec for all of them. */
#pragma once

#include <stddef.h>

#include "common/util.h"

/* Encodes len bytes into *ret (NUL-terminated, padded). -ENOMEM. */
int base64_encode(const void *data, size_t len, char **ret) _wur_;

/* Decodes s into *ret (NUL-terminated; may hold NULs: binary keys) and its length into *ret_len (may be
 * NULL). Line breaks, spaces and tabs are skipped (PEM-style wrapped input); anything else outside the
 * alphabet, a length (without the skipped characters) that is not a multiple of 4, or '=' anywhere but
 * the last two places gives -EINVAL with *ret untouched. */
int base64_decode(const char *s, char **ret, size_t *ret_len) _wur_;
