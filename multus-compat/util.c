/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers of multus-compat: string arrays, address checks, JSON loading. */
#include <ctype.h>

#include "common/addr.h"
#include "common/array.h"
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

int mc_strv_push(char ***v, size_t *n, const char *s) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        char **nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv) {
                free(c);
                return -ENOMEM;
        }
        nv[(*n)++] = c;
        *v = nv;
        return 0;
}

void mc_strv_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

int mc_json_strv(json_t *obj, const char *ctx, const char *key, char ***ret, size_t *ret_n, KvErr *e) {
        json_t *a = json_object_get(obj, key), *x;
        size_t i;
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be an array of strings, got %s",
                                 ctx, key, json_type_name(a));
        char **v = NULL;
        size_t n = 0;
        json_array_foreach(a, i, x) {
                if (!json_is_string(x)) {
                        mc_strv_free(v, n);
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s[%zu]' must be a string, got %s",
                                         ctx, key, i, json_type_name(x));
                }
                if (mc_strv_push(&v, &n, json_string_value(x)) < 0) {
                        mc_strv_free(v, n);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 1;
}

int mc_strdup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

bool mc_hwaddr_valid(const char *s, const unsigned *n_ok, size_t n_n_ok) {
        size_t len = strlen(s);
        if (len < 2 || (len + 1) % 3 != 0)
                return false;
        char sep = len > 2 ? s[2] : ':';
        if (sep != ':' && sep != '-')
                return false;
        for (size_t i = 0; i < len; i++) {
                bool want_sep = i % 3 == 2;
                if (want_sep ? s[i] != sep : !isxdigit((unsigned char) s[i]))
                        return false;
        }
        unsigned octets = (unsigned) ((len + 1) / 3);
        for (size_t i = 0; i < n_n_ok; i++)
                if (octets == n_ok[i])
                        return true;
        return false;
}

bool mc_ip_valid(const char *s, bool allow_cidr) {
        KvAddr a;
        KvPrefix p;
        if (allow_cidr && strchr(s, '/'))
                return kv_prefix_parse(s, &p) >= 0;
        return kv_addr_parse(s, &a) >= 0;
}

int mc_json_load(const char *text, size_t len, const char *what, json_t **ret, KvErr *e) {
        json_error_t je;
        json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &je);
        if (!v)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: invalid JSON at line %d column %d: %s", what, je.line,
                                 je.column, je.text);
        *ret = v;
        return 0;
}

void mc_caps_free(McCap *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].key);
                free(v[i].value);
        }
        free(v);
}

int mc_caps_push(McCap **v, size_t *n, const char *key, json_t *value) {
        _cleanup_free_ char *k = strdup(key);
        _cleanup_free_ char *val = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (!k || !val)
                return -ENOMEM;
        McCap *nv = realloc(*v, (*n + 1) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        nv[*n] = (McCap) { TAKE_PTR(k), TAKE_PTR(val) };
        (*n)++;
        *v = nv;
        return 0;
}
