/* SPDX-License-Identifier: Apache-2.0 */
/* multus-compat internals shared by its files and its unit test. */
#pragma once

#include <jansson.h>

#include "multus-compat/multus.h"

/* Appends a copy of s to the string array *v (*n entries). */
int mc_strv_push(char ***v, size_t *n, const char *s) _wur_;
void mc_strv_free(char **v, size_t n);
/* A string array of the JSON array at obj[key] (absent/null: empty). ctx names it in errors. */
int mc_json_strv(json_t *obj, const char *ctx, const char *key, char ***ret, size_t *ret_n, KvErr *e) _wur_;
/* strdup() of a string that may be NULL: *ret NULL then; -ENOMEM. */
int mc_strdup_opt(const char *s, char **ret) _wur_;
/* A hardware address of n octets ("aa:bb:..." or "aa-bb-..."); n_ok lists the accepted counts. */
bool mc_hwaddr_valid(const char *s, const unsigned *n_ok, size_t n_n_ok);
/* An IP address, or with allow_cidr also "addr/len". */
bool mc_ip_valid(const char *s, bool allow_cidr);
/* Loads a JSON value from text; KV_ERR_DECODE naming what on failure. */
int mc_json_load(const char *text, size_t len, const char *what, json_t **ret, KvErr *e) _wur_;
/* Capability list helpers. */
int mc_caps_push(McCap **v, size_t *n, const char *key, json_t *value) _wur_;
