/* SPDX-License-Identifier: Apache-2.0 */
/* The checks and typed getters every part of the VMI parse uses: field lists, errors naming the path. */
#include <ctype.h>
#include <stdarg.h>

#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

int vmi_nomem(VmiCtx *c) {
        return kverr_set(c->e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
}

int vmi_warn(VmiCtx *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = launch_warnings_addv(&c->v->warnings, fmt, ap);
        va_end(ap);
        return r < 0 ? vmi_nomem(c) : 0;
}

int vmi_invalid(VmiCtx *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = kverr_setv(c->e, KV_ERR_INVALID_CONFIG, -EINVAL, fmt, ap);
        va_end(ap);
        return r;
}

int vmi_check_fields(VmiCtx *c, json_t *obj, const char *path, const Field *f) {
        const char *key;
        json_t *val;
        json_object_foreach (obj, key, val) {
                const Field *hit = NULL;
                for (const Field *x = f; x->key; x++)
                        if (streq(x->key, key)) {
                                hit = x;
                                break;
                        }
                if (!hit) {
                        int r = vmi_warn(c, "%s.%s: unknown field, ignored", path, key);
                        if (r < 0)
                                return r;
                } else if (hit->kind == FLD_WARN) {
                        int r = vmi_warn(c, "%s.%s: not supported by kvnet-launcher, ignored", path, key);
                        if (r < 0)
                                return r;
                } else if (hit->kind == FLD_REJECT)
                        return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                         "%s.%s: not supported by kvnet-launcher", path, key);
        }
        return 0;
}

int vmi_require_object(VmiCtx *c, json_t *v, const char *path) {
        if (!json_is_object(v))
                return vmi_invalid(c, "%s: must be an object, got %s", path, json_type_name(v));
        return 0;
}

int vmi_dup_opt(VmiCtx *c, const char *s, char **ret) {
        if (!s)
                return 0;
        char *d = strdup(s);
        if (!d)
                return vmi_nomem(c);
        free(*ret);
        *ret = d;
        return 0;
}

int vmi_get_str(VmiCtx *c, json_t *obj, const char *path, const char *key, bool required, char **ret) {
        const char *s = NULL;
        int r = json_get_string(obj, path, key, required, &s, c->e);
        if (r <= 0)
                return r;
        r = vmi_dup_opt(c, s, ret);
        return r < 0 ? r : 1;
}

int vmi_quantity_field(VmiCtx *c, json_t *obj, const char *path, const char *key, uint64_t *ret) {
        json_t *q = json_object_get(obj, key);
        if (!q || json_is_null(q))
                return 0;
        if (json_is_integer(q)) {
                if (json_integer_value(q) <= 0)
                        return vmi_invalid(c, "%s.%s: must be a positive quantity, got %" JSON_INTEGER_FORMAT, path, key,
                                           json_integer_value(q));
                *ret = (uint64_t) json_integer_value(q);
                return 1;
        }
        if (!json_is_string(q))
                return vmi_invalid(c, "%s.%s: must be a quantity string, got %s", path, key, json_type_name(q));
        uint64_t b;
        int r = launch_parse_quantity(json_string_value(q), &b);
        if (r < 0)
                return kverr_set(c->e, KV_ERR_INVALID_CONFIG, r,
                                 "%s.%s: invalid quantity '%s' (expected e.g. 128Mi, 1Gi, 512M or bytes)", path, key,
                                 json_string_value(q));
        *ret = b;
        return 1;
}

int vmi_pci_field(VmiCtx *c, json_t *obj, const char *path, char out[16]) {
        const char *s = NULL;
        int r = json_get_string(obj, path, "pciAddress", false, &s, c->e);
        if (r <= 0)
                return r;
        if (launch_parse_pci(s, NULL, NULL, NULL, NULL) < 0)
                return vmi_invalid(c, "%s.pciAddress: must be DDDD:BB:SS.F (slot <= 1f, function <= 7), got '%s'", path,
                                   s);
        snprintf(out, 16, "%s", s);
        for (char *p = out; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return 0;
}

size_t vmi_find_kind(json_t *obj, const char *const *keys, size_t n, int *ret_kind, json_t **ret_src) {
        size_t found = 0;
        for (size_t k = 0; k < n; k++) {
                json_t *x = json_object_get(obj, keys[k]);
                if (!x)
                        continue;
                found++;
                *ret_src = x;
                *ret_kind = (int) k;
        }
        return found;
}
