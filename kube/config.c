/* SPDX-License-Identifier: Apache-2.0 */
/* Where the client connects and as whom: a kubeconfig file (current-context → cluster + user +
 * namespace) or the pod's service account. Every error names the field and the file. */
#include <libgen.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "kube/kube-priv.h"

#define KUBECONFIG_MAX (4 * 1024 * 1024)
#define SA_DIR "var/run/secrets/kubernetes.io/serviceaccount"

KubeConfig *kube_config_free(KubeConfig *c) {
        if (!c)
                return NULL;
        free(c->source);
        free(c->context);
        free(c->server);
        free(c->ca_file);
        free(c->ca_data);
        free(c->cert_file);
        free(c->key_file);
        free(c->cert_data);
        free(c->key_data);
        free(c->token);
        free(c->token_file);
        free(c->username);
        free(c->password);
        free(c->namespace);
        free(c);
        return NULL;
}

static char *memdup_nul(const char *p, size_t n) {
        char *d = malloc(n + 1);
        if (d) {
                memcpy(d, p, n);
                d[n] = '\0';
        }
        return d;
}

int kube_config_copy(const KubeConfig *src, KubeConfig **ret) {
        if (!src->server)
                return -EINVAL;
        _cleanup_(kube_config_freep) KubeConfig *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        const char *const from[] = { src->source,    src->context,  src->server,   src->ca_file, src->cert_file,
                                     src->key_file,  src->token,    src->username, src->password, src->namespace,
                                     src->token_file };
        char **to[] = { &c->source, &c->context, &c->server, &c->ca_file, &c->cert_file,
                        &c->key_file, &c->token, &c->username, &c->password, &c->namespace,
                        &c->token_file };
        for (size_t i = 0; i < ELEMENTSOF(to); i++)
                if (from[i] && !(*to[i] = strdup(from[i])))
                        return -ENOMEM;
        if ((src->ca_data && !(c->ca_data = memdup_nul(src->ca_data, src->ca_data_len))) ||
            (src->cert_data && !(c->cert_data = memdup_nul(src->cert_data, src->cert_data_len))) ||
            (src->key_data && !(c->key_data = memdup_nul(src->key_data, src->key_data_len))))
                return -ENOMEM;
        c->ca_data_len = src->ca_data_len;
        c->cert_data_len = src->cert_data_len;
        c->key_data_len = src->key_data_len;
        c->insecure = src->insecure;
        *ret = TAKE_PTR(c);
        return 0;
}

/* What the file reader knows while it reads one kubeconfig. */
typedef struct Reader {
        const char *path;
        char dir[4096];
        KvErr *e;
} Reader;

static int missing(Reader *rd, const char *ctx, const char *field) {
        return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL, "kubeconfig '%s': '%s%s%s' is missing", rd->path,
                         ctx ? ctx : "", ctx ? "." : "", field);
}

/* An optional string field of obj ("ctx.key" in errors); null counts as absent. */
static int get_str(Reader *rd, json_t *obj, const char *ctx, const char *key, char **ret) {
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL, "kubeconfig '%s': '%s.%s' must be a string, got %s",
                                 rd->path, ctx, key, json_type_name(v));
        char *s = strdup(json_string_value(v));
        if (!s)
                return -ENOMEM;
        free(*ret);
        *ret = s;
        return 1;
}

static int get_bool(Reader *rd, json_t *obj, const char *ctx, const char *key, bool *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v || json_is_null(v))
                return 0;
        if (json_is_boolean(v)) {
                *ret = json_is_true(v);
                return 1;
        }
        const char *s = json_string_value(v);
        if (s && (streq(s, "true") || streq(s, "false"))) {
                *ret = streq(s, "true");
                return 1;
        }
        return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL, "kubeconfig '%s': '%s.%s' must be true or false, got %s",
                         rd->path, ctx, key, s ? s : json_type_name(v));
}

/* A path field, made absolute against the kubeconfig's folder. */
static int get_path(Reader *rd, json_t *obj, const char *ctx, const char *key, char **ret) {
        _cleanup_free_ char *p = NULL;
        int r = get_str(rd, obj, ctx, key, &p);
        if (r <= 0)
                return r;
        if (p[0] != '/') {
                char *abs = NULL;
                if (asprintf(&abs, "%s/%s", rd->dir, p) < 0)
                        return -ENOMEM;
                free(p);
                p = abs;
        }
        free(*ret);
        *ret = TAKE_PTR(p);
        return 1;
}

/* A base64 field, decoded. */
static int get_b64(Reader *rd, json_t *obj, const char *ctx, const char *key, char **ret, size_t *ret_len) {
        _cleanup_free_ char *s = NULL;
        int r = get_str(rd, obj, ctx, key, &s);
        if (r <= 0)
                return r;
        char *data;
        if (base64_decode(s, &data, ret_len) < 0)
                return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL, "kubeconfig '%s': '%s.%s' is not base64", rd->path,
                                 ctx, key);
        free(*ret);
        *ret = data;
        return 1;
}

/* The entry of list (clusters, users, contexts) called name; its inner object (cluster, user, context). */
static int find_named(Reader *rd, json_t *root, const char *list, const char *name, const char *inner, json_t **ret,
                      char ctx[static 256]) {
        json_t *a = json_object_get(root, list);
        if (a && !json_is_array(a) && !json_is_null(a))
                return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL, "kubeconfig '%s': '%s' must be a list, got %s",
                                 rd->path, list, json_type_name(a));
        size_t i;
        json_t *it;
        json_array_foreach(a, i, it) {
                if (!streq_ptr(json_string_value(json_object_get(it, "name")), name))
                        continue;
                snprintf(ctx, 256, "%s[%s].%s", list, name, inner);
                json_t *o = json_object_get(it, inner);
                if (!o || json_is_null(o)) { /* "user: {}" may also be written as "user:" */
                        *ret = NULL;
                        return 0;
                }
                if (!json_is_object(o))
                        return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "kubeconfig '%s': '%s' must be a mapping, got %s", rd->path, ctx,
                                         json_type_name(o));
                *ret = o;
                return 0;
        }
        return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -ENOENT, "kubeconfig '%s': no entry '%s' in '%s'", rd->path,
                         name, list);
}

static int read_cluster(Reader *rd, json_t *cl, const char *ctx, KubeConfig *c) {
        int r;
        if ((r = get_str(rd, cl, ctx, "server", &c->server)) < 0)
                return r;
        if (r == 0 || !c->server[0])
                return missing(rd, ctx, "server");
        size_t n = strlen(c->server);
        while (n > 0 && c->server[n - 1] == '/')
                c->server[--n] = '\0';
        if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
                return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "kubeconfig '%s': '%s.server' must be an http:// or https:// URL, got '%s'", rd->path,
                                 ctx, c->server);
        if ((r = get_bool(rd, cl, ctx, "insecure-skip-tls-verify", &c->insecure)) < 0 ||
            (r = get_path(rd, cl, ctx, "certificate-authority", &c->ca_file)) < 0 ||
            (r = get_b64(rd, cl, ctx, "certificate-authority-data", &c->ca_data, &c->ca_data_len)) < 0)
                return r;
        return 0;
}

int kube_read_token_file(const char *path, char **ret) {
        _cleanup_free_ char *t = NULL;
        int r = read_file_max(path, 64 * 1024, &t, NULL);
        if (r < 0)
                return r;
        t[strcspn(t, "\r\n")] = '\0';
        free(*ret);
        *ret = TAKE_PTR(t);
        return 0;
}

static int read_user(Reader *rd, json_t *u, const char *ctx, KubeConfig *c) {
        int r;
        if (!u)
                return 0;
        if ((r = get_str(rd, u, ctx, "token", &c->token)) < 0 || (r = get_path(rd, u, ctx, "tokenFile", &c->token_file)) < 0 ||
            (r = get_path(rd, u, ctx, "client-certificate", &c->cert_file)) < 0 ||
            (r = get_b64(rd, u, ctx, "client-certificate-data", &c->cert_data, &c->cert_data_len)) < 0 ||
            (r = get_path(rd, u, ctx, "client-key", &c->key_file)) < 0 ||
            (r = get_b64(rd, u, ctx, "client-key-data", &c->key_data, &c->key_data_len)) < 0 ||
            (r = get_str(rd, u, ctx, "username", &c->username)) < 0 ||
            (r = get_str(rd, u, ctx, "password", &c->password)) < 0)
                return r;
        if (c->token) { /* an inline token wins over tokenFile, as in client-go */
                free(c->token_file);
                c->token_file = NULL;
        } else if (c->token_file && (r = kube_read_token_file(c->token_file, &c->token)) < 0)
                return kverr_set_errno(rd->e, KV_ERR_INVALID_CONFIG, r, "kubeconfig '%s': '%s.tokenFile': cannot read '%s'",
                                       rd->path, ctx, c->token_file);
        bool cert = c->cert_file || c->cert_data, key = c->key_file || c->key_data;
        if (cert != key)
                return missing(rd, ctx, cert ? "client-key(-data)" : "client-certificate(-data)");
        if (json_object_get(u, "exec") || json_object_get(u, "auth-provider"))
                if (!c->token && !cert)
                        return kverr_set(rd->e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                         "kubeconfig '%s': '%s.%s' (credential plugins) is not supported: use a token "
                                         "or a client certificate",
                                         rd->path, ctx, json_object_get(u, "exec") ? "exec" : "auth-provider");
        return 0;
}

static int config_from_json(Reader *rd, json_t *root, const char *context, KubeConfig *c) {
        char ctx[256];
        int r;
        _cleanup_free_ char *current = NULL;
        if (!context) {
                if ((r = get_str(rd, root, "kubeconfig", "current-context", &current)) < 0)
                        return r;
                if (r == 0 || !current[0])
                        return missing(rd, NULL, "current-context");
                context = current;
        }
        if (!(c->context = strdup(context)))
                return -ENOMEM;
        json_t *cx, *cl, *u;
        if ((r = find_named(rd, root, "contexts", context, "context", &cx, ctx)) < 0)
                return r;
        _cleanup_free_ char *cluster = NULL, *user = NULL;
        if ((r = get_str(rd, cx, ctx, "cluster", &cluster)) < 0)
                return r;
        if (r == 0)
                return missing(rd, ctx, "cluster");
        if ((r = get_str(rd, cx, ctx, "user", &user)) < 0 || (r = get_str(rd, cx, ctx, "namespace", &c->namespace)) < 0)
                return r;
        char uctx[256];
        if ((r = find_named(rd, root, "clusters", cluster, "cluster", &cl, ctx)) < 0)
                return r;
        if (!cl)
                return missing(rd, ctx, "server");
        if ((r = read_cluster(rd, cl, ctx, c)) < 0)
                return r;
        if (user && user[0]) {
                if ((r = find_named(rd, root, "users", user, "user", &u, uctx)) < 0 ||
                    (r = read_user(rd, u, uctx, c)) < 0)
                        return r;
        }
        if (!c->namespace && !(c->namespace = strdup("default")))
                return -ENOMEM;
        return 0;
}

int kube_config_from_file(const char *path, const char *context, KubeConfig **ret, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, KUBECONFIG_MAX, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "kubeconfig '%s': cannot read it", path);
        Reader rd = { .path = path, .e = e };
        char tmp[sizeof rd.dir];
        snprintf(tmp, sizeof tmp, "%s", path);
        snprintf(rd.dir, sizeof rd.dir, "%s", dirname(tmp));
        _cleanup_json_ json_t *root = NULL;
        char what[4200];
        snprintf(what, sizeof what, "kubeconfig '%s'", path);
        if ((r = kube_yaml_parse(text, len, what, &root, e)) < 0)
                return r;
        _cleanup_(kube_config_freep) KubeConfig *c = calloc(1, sizeof *c);
        if (!c || !(c->source = strdup(path)))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "kubeconfig: out of memory");
        if ((r = config_from_json(&rd, root, context, c)) < 0)
                return r == -ENOMEM ? kverr_set(e, KV_ERR_INTERNAL, r, "kubeconfig: out of memory") : r;
        *ret = TAKE_PTR(c);
        return 0;
}

int kube_config_in_cluster(const char *root, KubeConfig **ret, KvErr *e) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host || !port || !*port)
                return kverr_set(e, KV_ERR_INVALID_ENV, -ENXIO,
                                 "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
        if (!root || !*root)
                root = "/";
        _cleanup_(kube_config_freep) KubeConfig *c = calloc(1, sizeof *c);
        char path[4096];
        if (!c || !(c->source = strdup("in-cluster")) ||
            asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "in-cluster config: out of memory");
        snprintf(path, sizeof path, "%s/%s/token", root, SA_DIR);
        int r = kube_read_token_file(path, &c->token);
        if (r >= 0 && !(c->token_file = strdup(path)))
                r = -ENOMEM;
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "in-cluster config: cannot read the token '%s'", path);
        snprintf(path, sizeof path, "%s/%s/ca.crt", root, SA_DIR);
        if (access(path, R_OK) < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, negative_errno(),
                                       "in-cluster config: cannot read the CA '%s'", path);
        if (!(c->ca_file = strdup(path)))
                return -ENOMEM;
        snprintf(path, sizeof path, "%s/%s/namespace", root, SA_DIR);
        if (kube_read_token_file(path, &c->namespace) < 0 || !c->namespace[0]) {
                free(c->namespace);
                if (!(c->namespace = strdup("default")))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int kube_config_load(const char *path, KubeConfig **ret, KvErr *e) {
        if (path && *path)
                return kube_config_from_file(path, NULL, ret, e);
        const char *env = getenv("KUBECONFIG");
        if (env && *env) {
                char first[4096]; /* a list "a:b" names the first file (merging is not supported) */
                snprintf(first, sizeof first, "%s", env);
                first[strcspn(first, ":")] = '\0';
                return kube_config_from_file(first, NULL, ret, e);
        }
        if (getenv("KUBERNETES_SERVICE_HOST"))
                return kube_config_in_cluster(NULL, ret, e);
        const char *home = getenv("HOME");
        char p[4096];
        snprintf(p, sizeof p, "%s/.kube/config", home && *home ? home : "/root");
        return kube_config_from_file(p, NULL, ret, e);
}
