/* SPDX-License-Identifier: Apache-2.0 */
/* Request URLs: where a (group/version, resource, namespace, name) lives in the API's path layout. */
#include <ctype.h>

#include "kube/kube-priv.h"

/* RFC 3986 unreserved characters stay, everything else is %XX. */
static int escape(KubeBuf *b, const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                int r;
                if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
                        r = kube_buf_append(b, p, 1);
                else
                        r = kube_buf_append(b, (char[3]){ '%', hex[*p >> 4], hex[*p & 15] }, 3);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int segment(KubeBuf *b, const char *s) {
        int r = kube_buf_append(b, "/", 1);
        return r < 0 ? r : escape(b, s);
}

int kube_url_build(const char *server, const KubeRef *ref, const char *subresource, const char *query, char **ret,
                   KvErr *e) {
        const char *gv = ref->group_version;
        if (!gv || !*gv || !ref->resource || !*ref->resource)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: a request needs %s",
                                 !gv || !*gv ? "a group/version (\"v1\", \"kubevirt.io/v1\")" : "a resource");
        const char *slash = strchr(gv, '/');
        if (slash && (slash == gv || !slash[1] || strchr(slash + 1, '/')))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: '%s' is not GROUP/VERSION", gv);
        if (subresource && (!ref->name || !*ref->name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "kube: %s/%s needs a name", ref->resource, subresource);
        _cleanup_(kube_buf_clear) KubeBuf b = {};
        int r = kube_buf_append(&b, server, strlen(server));
        if (r >= 0)
                r = kube_buf_append(&b, slash ? "/apis/" : "/api/", slash ? 6 : 5);
        if (r >= 0)
                r = kube_buf_append(&b, gv, strlen(gv)); /* checked above: GROUP/VERSION or VERSION */
        if (r >= 0 && ref->namespace && *ref->namespace) {
                r = kube_buf_append(&b, "/namespaces", 11);
                if (r >= 0)
                        r = segment(&b, ref->namespace);
        }
        if (r >= 0)
                r = segment(&b, ref->resource);
        if (r >= 0 && ref->name && *ref->name)
                r = segment(&b, ref->name);
        if (r >= 0 && subresource)
                r = segment(&b, subresource);
        if (r >= 0 && query && *query) {
                r = kube_buf_append(&b, "?", 1);
                if (r >= 0)
                        r = kube_buf_append(&b, query, strlen(query));
        }
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "kube: out of memory");
        *ret = TAKE_PTR(b.data);
        return 0;
}

int kube_query_add(char **q, const char *key, const char *value) {
        if (!value || !*value)
                return 0;
        _cleanup_(kube_buf_clear) KubeBuf b = {};
        int r = 0;
        if (*q && **q)
                r = kube_buf_append(&b, *q, strlen(*q));
        if (r >= 0 && b.len)
                r = kube_buf_append(&b, "&", 1);
        if (r >= 0)
                r = kube_buf_append(&b, key, strlen(key));
        if (r >= 0)
                r = kube_buf_append(&b, "=", 1);
        if (r >= 0)
                r = escape(&b, value);
        if (r < 0)
                return r;
        free(*q);
        *q = TAKE_PTR(b.data);
        return 0;
}

void kube_ref_describe(const KubeRef *ref, char *buf, size_t size) {
        const char *gv = ref->group_version ? ref->group_version : "";
        const char *slash = strchr(gv, '/');
        int n = snprintf(buf, size, "%s%s%.*s", ref->resource ? ref->resource : "?", slash ? "." : "",
                         slash ? (int) (slash - gv) : 0, gv);
        if (n < 0 || (size_t) n >= size || !ref->name)
                return;
        snprintf(buf + n, size - (size_t) n, " '%s%s%s'", ref->namespace ? ref->namespace : "",
                 ref->namespace ? "/" : "", ref->name);
}
