/* SPDX-License-Identifier: Apache-2.0 */
/* What one plugin call gets besides its binary: CNI_ARGS, the attachment's checked fields, and its stdin
 * (the plugin's conf with name, cniVersion, prevResult and the runtimeConfig it declared). */
#include <limits.h>
#include <net/if.h>

#include <jansson.h>

#include "common/array.h"
#include "common/json-util.h"
#include "node/node-priv.h"

#define ID_MAX 256
#define ARGS_MAX 4096

static bool id_char(char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (!first && (c == '_' || c == '.' || c == '-'));
}

static bool arg_key_valid(const char *k) {
        if (!k || !*k || strlen(k) > 128)
                return false;
        for (const char *p = k; *p; p++)
                if (!id_char(*p, false))
                        return false;
        return true;
}

static bool arg_value_valid(const char *v) {
        return v && !strpbrk(v, ";\n") && strlen(v) <= 1024;
}

static int args_err(NodeErr *e, const char *fmt, const char *a, const char *b) {
        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, fmt, a, b);
}

int node_cni_attachment_check(const NodeCniAttachment *a, NodeErr *e) {
        const char *cid = a->container_id;
        bool ok = cid && *cid && strlen(cid) <= ID_MAX && id_char(cid[0], true);
        for (const char *p = cid; ok && *p; p++)
                ok = id_char(*p, false);
        if (!ok)
                return args_err(e, "container ID must be [A-Za-z0-9][A-Za-z0-9_.-]* (at most 256), got '%.80s'%s",
                                cid ? cid : "(null)", "");
        const char *ifn = a->ifname;
        if (!ifn || !*ifn || strlen(ifn) >= IFNAMSIZ || streq(ifn, ".") || streq(ifn, "..") || strpbrk(ifn, "/: \t\n"))
                return args_err(e, "ifname must be a network interface name (1..15, no '/', ':' or space), got '%.80s'%s",
                                ifn ? ifn : "(null)", "");
        if (a->netns && *a->netns && (a->netns[0] != '/' || strlen(a->netns) >= PATH_MAX || strchr(a->netns, '\n')))
                return args_err(e, "netns must be an absolute path, got '%.80s'%s", a->netns, "");
        for (size_t i = 0; i < a->n_args; i++) {
                if (!arg_key_valid(a->args[i].key))
                        return args_err(e, "CNI_ARGS: key must be [A-Za-z0-9_.-]+, got '%.80s'%s",
                                        a->args[i].key ? a->args[i].key : "(null)", "");
                if (!arg_value_valid(a->args[i].value))
                        return args_err(e, "CNI_ARGS: '%s' must not hold ';' or a newline, got '%.80s'", a->args[i].key,
                                        a->args[i].value ? a->args[i].value : "(null)");
        }
        if (a->pod) {
                const char *f[] = { a->pod->namespace_, a->pod->name, a->pod->uid };
                const char *names[] = { "pod namespace", "pod name", "pod UID" };
                for (size_t i = 0; i < ELEMENTSOF(f); i++)
                        if (!f[i] || !*f[i] || !arg_value_valid(f[i]))
                                return args_err(e, "%s must be non-empty without ';', got '%.80s'", names[i],
                                                f[i] ? f[i] : "(null)");
        }
        for (size_t i = 0; i < a->n_caps; i++) {
                if (!a->caps[i].key || !*a->caps[i].key)
                        return args_err(e, "capability arg: empty name%s%s", "", "");
                json_error_t jerr;
                _cleanup_json_ json_t *v =
                        a->caps[i].value ? json_loads(a->caps[i].value, JSON_DECODE_ANY, &jerr) : NULL;
                if (!v)
                        return args_err(e, "capability arg '%s': invalid JSON '%.80s'", a->caps[i].key,
                                        a->caps[i].value ? a->caps[i].value : "(null)");
        }
        return 0;
}

typedef struct Buf {
        char *s;
        size_t len, cap;
} Buf;

static int buf_add(Buf *b, const char *k, const char *v) {
        size_t need = (b->len ? 1 : 0) + strlen(k) + 1 + strlen(v);
        if (b->len + need > ARGS_MAX)
                return -E2BIG;
        int r = ARRAY_GROW(b->s, b->cap, b->len + need + 1);
        if (r < 0)
                return r;
        b->len += (size_t) sprintf(b->s + b->len, "%s%s=%s", b->len ? ";" : "", k, v);
        return 0;
}

int node_cni_args_build(const NodeCniAttachment *a, char **ret, NodeErr *e) {
        int r = node_cni_attachment_check(a, e);
        if (r < 0)
                return r;
        Buf b = { .s = strdup(""), .len = 0, .cap = 1 };
        if (!b.s)
                return -ENOMEM;
        if (a->pod) {
                const NodeCniArg k8s[] = {
                        { "IgnoreUnknown", "1" },
                        { "K8S_POD_NAMESPACE", a->pod->namespace_ },
                        { "K8S_POD_NAME", a->pod->name },
                        { "K8S_POD_INFRA_CONTAINER_ID", a->container_id },
                        { "K8S_POD_UID", a->pod->uid },
                };
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(k8s); i++)
                        r = buf_add(&b, k8s[i].key, k8s[i].value);
        }
        for (size_t i = 0; r >= 0 && i < a->n_args; i++)
                r = buf_add(&b, a->args[i].key, a->args[i].value);
        if (r < 0) {
                free(b.s);
                return r == -E2BIG ? node_err_set(e, NODE_ERR_ARGS, NULL, NULL, r, "CNI_ARGS: longer than %d bytes",
                                                  ARGS_MAX)
                                   : r;
        }
        *ret = b.s;
        return 0;
}

int node_cni_args_split(char *buf, NodeCniArg **ret, size_t *ret_n, NodeErr *e) {
        NodeCniArg *v = NULL;
        size_t n = 0, cap = 0;
        char *save = NULL;
        for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
                char *eq = strchr(t, '=');
                if (!eq || eq == t) {
                        free(v);
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "CNI_ARGS: '%.80s' is not KEY=VALUE", t);
                }
                *eq = '\0';
                if (ARRAY_GROW(v, cap, n + 1) < 0) {
                        free(v);
                        return -ENOMEM;
                }
                v[n++] = (NodeCniArg) { t, eq + 1 };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static bool declares(const NodeCniPlugin *p, const char *cap) {
        for (size_t i = 0; i < p->n_capabilities; i++)
                if (streq(p->capabilities[i], cap))
                        return true;
        return false;
}

static int set_parsed(json_t *obj, const char *key, const char *text) {
        json_error_t jerr;
        json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (!v)
                return -EINVAL;
        return json_object_set_new(obj, key, v) < 0 ? -ENOMEM : 0;
}

int node_cni_stdin_build(const NodeCniNetwork *net, const NodeCniPlugin *p, const char *prev_result,
                         const NodeCniArg *caps, size_t n_caps, const char *extra_key, const char *extra_json, char **ret,
                         NodeErr *e) {
        json_error_t jerr;
        _cleanup_json_ json_t *conf = json_loads(p->conf, 0, &jerr);
        if (!conf)
                return -ENOMEM; /* it was dumped by us from a valid object */
        if (json_object_set_new(conf, "name", json_string(net->name)) < 0 ||
            json_object_set_new(conf, "cniVersion", json_string(net->cni_version)) < 0)
                return -ENOMEM;
        if (prev_result && set_parsed(conf, "prevResult", prev_result) < 0)
                return node_err_set(e, NODE_ERR_RESULT, p->type, NULL, -EBADMSG, "prevResult is not valid JSON");
        _cleanup_json_ json_t *rc = json_object();
        if (!rc)
                return -ENOMEM;
        for (size_t i = 0; i < n_caps; i++) {
                if (!declares(p, caps[i].key))
                        continue;
                if (set_parsed(rc, caps[i].key, caps[i].value) < 0)
                        return node_err_set(e, NODE_ERR_ARGS, p->type, NULL, -EINVAL,
                                            "capability arg '%s': invalid JSON '%.80s'", caps[i].key, caps[i].value);
        }
        if (json_object_size(rc) > 0 && json_object_set(conf, "runtimeConfig", rc) < 0)
                return -ENOMEM;
        if (extra_key && extra_json && set_parsed(conf, extra_key, extra_json) < 0)
                return -EINVAL;
        char *s = json_dump_compact(conf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
