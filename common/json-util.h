/* SPDX-License-Identifier: Apache-2.0 */
/* Typed field access on jansson objects. Every getter names the field in its error:
 *   "netconf: 'vlan' must be 0..4094, got 5000".
 * 'ctx' is the path of the object being read ("netconf", "ipam.ranges[0][1]").
 * A missing optional field leaves *ret untouched and returns 0; a present field returns 1. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"

/* jansson >= 2.9 provides json_decrefp(). */
#define _cleanup_json_ _cleanup_(json_decrefp)

int json_get_string(json_t *obj, const char *ctx, const char *key, bool required, const char **ret, KvErr *e) _wur_;
/* The first object of array arr whose member key is the string value (a named list entry: an interface, a
 * condition), or NULL (also when arr is not an array or value is NULL). */
json_t *json_array_find_str(json_t *arr, const char *key, const char *value);
int json_get_bool(json_t *obj, const char *ctx, const char *key, bool required, bool *ret, KvErr *e) _wur_;
int json_get_int(json_t *obj, const char *ctx, const char *key, bool required, long long min, long long max,
                 long long *ret, KvErr *e) _wur_;
int json_get_object(json_t *obj, const char *ctx, const char *key, bool required, json_t **ret, KvErr *e) _wur_;
int json_get_array(json_t *obj, const char *ctx, const char *key, bool required, json_t **ret, KvErr *e) _wur_;
const char *json_type_name(const json_t *v);

/* Parses text (at most max bytes) into an object; KV_ERR_DECODE on failure. */
int json_parse_object(const char *text, size_t len, size_t max, const char *what, json_t **ret, KvErr *e) _wur_;
/* Serialises compactly; caller frees. NULL on ENOMEM. */
char *json_dump_compact(const json_t *v);
/* json_dump_compact() and a '\n': one line of a line-based file or protocol; its length (with the '\n') in
 * *ret_len. Caller frees; NULL on ENOMEM. */
char *json_dump_line(const json_t *v, size_t *ret_len);
