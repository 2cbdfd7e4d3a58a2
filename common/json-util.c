/* SPDX-License-Identifier: Apache-2.0 */
#include "common/json-util.h"

const char *json_type_name(const json_t *v) {
        if (!v)
                return "missing";
        switch (json_typeof(v)) {
        case JSON_OBJECT: return "object";
        case JSON_ARRAY: return "array";
        case JSON_STRING: return "string";
        case JSON_INTEGER: return "integer";
        case JSON_REAL: return "number";
        case JSON_TRUE:
        case JSON_FALSE: return "boolean";
        case JSON_NULL: return "null";
        }
        return "unknown";
}

static int lookup(json_t *obj, const char *ctx, const char *key, bool required, json_t **ret, KvErr *e) {
        json_t *v = obj ? json_object_get(obj, key) : NULL;
        if (!v || json_is_null(v)) {
                if (required)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' is required", ctx, key);
                return 0;
        }
        *ret = v;
        return 1;
}

int json_get_string(json_t *obj, const char *ctx, const char *key, bool required, const char **ret, KvErr *e) {
        json_t *v = NULL;
        int r = lookup(obj, ctx, key, required, &v, e);
        if (r <= 0)
                return r;
        if (!json_is_string(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be a string, got %s", ctx, key,
                                 json_type_name(v));
        *ret = json_string_value(v);
        return 1;
}

json_t *json_array_find_str(json_t *arr, const char *key, const char *value) {
        size_t i;
        json_t *o;
        if (!value)
                return NULL;
        json_array_foreach(arr, i, o) {
                const char *s = json_string_value(json_object_get(o, key));
                if (s && strcmp(s, value) == 0)
                        return o;
        }
        return NULL;
}

int json_get_bool(json_t *obj, const char *ctx, const char *key, bool required, bool *ret, KvErr *e) {
        json_t *v = NULL;
        int r = lookup(obj, ctx, key, required, &v, e);
        if (r <= 0)
                return r;
        if (!json_is_boolean(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be a boolean, got %s", ctx, key,
                                 json_type_name(v));
        *ret = json_is_true(v);
        return 1;
}

int json_get_int(json_t *obj, const char *ctx, const char *key, bool required, long long min, long long max,
                 long long *ret, KvErr *e) {
        json_t *v = NULL;
        int r = lookup(obj, ctx, key, required, &v, e);
        if (r <= 0)
                return r;
        if (!json_is_integer(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be an integer, got %s", ctx, key,
                                 json_type_name(v));
        long long x = json_integer_value(v);
        if (x < min || x > max)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ERANGE, "%s: '%s' must be %lld..%lld, got %lld", ctx, key,
                                 min, max, x);
        *ret = x;
        return 1;
}

int json_get_object(json_t *obj, const char *ctx, const char *key, bool required, json_t **ret, KvErr *e) {
        json_t *v = NULL;
        int r = lookup(obj, ctx, key, required, &v, e);
        if (r <= 0)
                return r;
        if (!json_is_object(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be an object, got %s", ctx, key,
                                 json_type_name(v));
        *ret = v;
        return 1;
}

int json_get_array(json_t *obj, const char *ctx, const char *key, bool required, json_t **ret, KvErr *e) {
        json_t *v = NULL;
        int r = lookup(obj, ctx, key, required, &v, e);
        if (r <= 0)
                return r;
        if (!json_is_array(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be an array, got %s", ctx, key,
                                 json_type_name(v));
        *ret = v;
        return 1;
}

int json_parse_object(const char *text, size_t len, size_t max, const char *what, json_t **ret, KvErr *e) {
        if (len > max)
                return kverr_set(e, KV_ERR_DECODE, -EMSGSIZE, "%s: input is %zu bytes, limit is %zu", what, len, max);
        json_error_t jerr;
        json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!v)
                return kverr_set(e, KV_ERR_DECODE, -EBADMSG, "%s: malformed JSON at line %d column %d: %s", what,
                                 jerr.line, jerr.column, jerr.text);
        if (!json_is_object(v)) {
                const char *t = json_type_name(v);
                json_decref(v);
                return kverr_set(e, KV_ERR_DECODE, -EBADMSG, "%s: must be a JSON object, got %s", what, t);
        }
        *ret = v;
        return 0;
}

char *json_dump_compact(const json_t *v) {
        return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

char *json_dump_line(const json_t *v, size_t *ret_len) {
        _cleanup_free_ char *text = json_dump_compact(v);
        if (!text)
                return NULL;
        size_t n = strlen(text);
        char *line = malloc(n + 2);
        if (!line)
                return NULL;
        memcpy(line, text, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        *ret_len = n + 1;
        return line;
}
