/* SPDX-License-Identifier: Apache-2.0 */
/* kube/: kubeconfig and in-cluster config, URLs, Status errors, the watch stream parser cut at every
 * byte, the rate limiter and the backoff. Requests against a server: tests/integration/test-kube-client.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "kube/kube-priv.h"
#include "tests/unit/helpers.h"
#include "tests/unit/tmpdir.h"

static char tmp[64];

static int setup(void **state) {
        (void) state;
        snprintf(tmp, sizeof tmp, "/tmp/test-kube-XXXXXX");
        return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        return tmpdir_remove(tmp);
}

static const char *write_tmp(const char *name, const char *text) {
        static char path[256];
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        assert_int_equal(write_file_atomic(path, text, strlen(text), false), 0);
        return path;
}

/* Loads text as a kubeconfig; returns the errno, the message in *e. */
static int load(const char *text, KubeConfig **ret, KvErr *e) {
        const char *p = write_tmp("config", text);
        kverr_clear(e);
        return kube_config_from_file(p, NULL, ret, e);
}

#define HEAD                                                                            \
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"                          \
        "contexts:\n- name: dev\n  context: {cluster: c1, user: u1, namespace: vms}\n" \
        "- name: other\n  context:\n    cluster: c1\n"

static void test_config_token(void **state) {
        (void) state;
        _cleanup_(kube_config_freep) KubeConfig *c = NULL;
        KvErr e = {};
        assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
                                   "users:\n- name: u1\n  user:\n    token: abc.def\n",
                              &c, &e),
                         0);
        assert_string_equal(c->server, "https://10.0.0.1:6443");
        assert_string_equal(c->token, "abc.def");
        assert_string_equal(c->namespace, "vms");
        assert_string_equal(c->context, "dev");
        assert_false(c->insecure);
        assert_null(c->ca_file);
        assert_null(c->ca_data);
        /* another context by name: no namespace → default, no user → no credentials */
        kube_config_free(c);
        c = NULL;
        const char *p = write_tmp("config", HEAD "clusters:\n- name: c1\n  cluster: {server: 'http://127.0.0.1:8080'}\n");
        assert_int_equal(kube_config_from_file(p, "other", &c, &e), 0);
        assert_string_equal(c->namespace, "default");
        assert_null(c->token);
}

static void test_config_certs(void **state) {
        (void) state;
        _cleanup_(kube_config_freep) KubeConfig *c = NULL;
        KvErr e = {};
        /* inline: base64 of "CA PEM", "CERT", "KEY" */
        assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n    server: https://k:6443\n"
                                   "    certificate-authority-data: Q0EgUEVN\n    insecure-skip-tls-verify: false\n"
                                   "users:\n- name: u1\n  user:\n    client-certificate-data: Q0VSVA==\n"
                                   "    client-key-data: S0VZ\n",
                              &c, &e),
                         0);
        assert_int_equal(c->ca_data_len, 6);
        assert_memory_equal(c->ca_data, "CA PEM", 6);
        assert_string_equal(c->cert_data, "CERT");
        assert_string_equal(c->key_data, "KEY");
        kube_config_free(c);
        c = NULL;
        /* as files, relative to the kubeconfig's folder; the token from tokenFile; JSON kubeconfig */
        write_tmp("token", "tok-from-file\n");
        assert_int_equal(
                load("{\"current-context\": \"dev\", \"contexts\": [{\"name\": \"dev\", \"context\": {\"cluster\": \"c1\", "
                     "\"user\": \"u1\"}}], \"clusters\": [{\"name\": \"c1\", \"cluster\": {\"server\": \"https://k\", "
                     "\"certificate-authority\": \"ca.crt\", \"insecure-skip-tls-verify\": true}}], \"users\": [{\"name\": "
                     "\"u1\", \"user\": {\"client-certificate\": \"/etc/c.pem\", \"client-key\": \"k.pem\", "
                     "\"tokenFile\": \"token\"}}]}",
                     &c, &e),
                0);
        char want[128];
        snprintf(want, sizeof want, "%s/ca.crt", tmp);
        assert_string_equal(c->ca_file, want);
        assert_true(c->insecure);
        assert_string_equal(c->cert_file, "/etc/c.pem");
        snprintf(want, sizeof want, "%s/k.pem", tmp);
        assert_string_equal(c->key_file, want);
        assert_string_equal(c->token, "tok-from-file");
        /* the client reads a token file again once a minute: a rotated token is used */
        _cleanup_(kube_client_freep) KubeClient *client = NULL;
        assert_int_equal(kube_client_new(c, NULL, &client, NULL), 0);
        write_tmp("token", "rotated\n");
        KubeOp *op = NULL;
        assert_int_equal(kube_op_new(client, "GET", "https://k/api", &op, NULL), 0);
        kube_op_free(op);
        assert_string_equal(kube_client_config(client)->token, "rotated");
        write_tmp("token", "again\n");
        assert_int_equal(kube_op_new(client, "GET", "https://k/api", &op, NULL), 0);
        kube_op_free(op);
        assert_string_equal(kube_client_config(client)->token, "rotated"); /* not within the minute */
}

/* Each broken kubeconfig fails with a message that names the field. */
static void test_config_errors(void **state) {
        (void) state;
        static const struct {
                const char *text, *want;
        } cases[] = {
                { "apiVersion: v1\nclusters: []\n", "'current-context' is missing" },
                { HEAD "clusters:\n- name: c1\n  cluster: {insecure-skip-tls-verify: true}\n",
                  "'clusters[c1].cluster.server' is missing" },
                { HEAD "clusters:\n- name: c2\n  cluster: {server: https://k}\n", "no entry 'c1' in 'clusters'" },
                { "current-context: dev\ncontexts:\n- name: dev\n  context: {user: u1}\n",
                  "'contexts[dev].context.cluster' is missing" },
                { "current-context: nosuch\ncontexts: []\n", "no entry 'nosuch' in 'contexts'" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: https://k, insecure-skip-tls-verify: maybe}\n",
                  "'clusters[c1].cluster.insecure-skip-tls-verify' must be true or false, got maybe" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: https://k, certificate-authority-data: '!!'}\n",
                  "'clusters[c1].cluster.certificate-authority-data' is not base64" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: ftp://k}\n",
                  "'clusters[c1].cluster.server' must be an http:// or https:// URL, got 'ftp://k'" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: https://k}\nusers:\n- name: u1\n  user:\n"
                       "    client-certificate-data: Q0VSVA==\n",
                  "'users[u1].user.client-key(-data)' is missing" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: https://k}\nusers:\n- name: u1\n  user:\n"
                       "    tokenFile: nosuch\n",
                  "'users[u1].user.tokenFile': cannot read" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: [a]}\n",
                  "'clusters[c1].cluster.server' must be a string, got array" },
                { HEAD "clusters:\n- name: c1\n  cluster: {server: https://k}\nusers:\n- name: u1\n  user:\n"
                       "    exec: {command: aws}\n",
                  "'users[u1].user.exec' (credential plugins) is not supported" },
                { "current-context: [unclosed\n", "not YAML or JSON" },
                { "- a\n- b\n", "the document is not a mapping" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                KubeConfig *c = NULL;
                KvErr e = {};
                int r = load(cases[i].text, &c, &e);
                if (r >= 0 || !strstr(e.msg, cases[i].want) || !strstr(e.msg, tmp))
                        fail_msg("case %zu: r=%d, '%s' does not say \"%s\" and the file", i, r, e.msg, cases[i].want);
                assert_null(c);
        }
        KubeConfig *c = NULL;
        KvErr e = {};
        assert_int_equal(kube_config_from_file("/nonexistent/kubeconfig", NULL, &c, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "/nonexistent/kubeconfig"));
}

static void test_config_in_cluster(void **state) {
        (void) state;
        char dir[256];
        snprintf(dir, sizeof dir, "%s/var/run/secrets/kubernetes.io/serviceaccount", tmp);
        assert_int_equal(mkdir_p(dir, 0755), 0);
        write_tmp("var/run/secrets/kubernetes.io/serviceaccount/token", "sa-token\n");
        write_tmp("var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "PEM\n");
        write_tmp("var/run/secrets/kubernetes.io/serviceaccount/namespace", "kvnet-system");
        setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        _cleanup_(kube_config_freep) KubeConfig *c = NULL;
        KvErr e = {};
        assert_int_equal(kube_config_in_cluster(tmp, &c, &e), 0);
        assert_string_equal(c->server, "https://[fd00::1]:443");
        assert_string_equal(c->token, "sa-token");
        assert_string_equal(c->namespace, "kvnet-system");
        assert_non_null(strstr(c->ca_file, "serviceaccount/ca.crt"));
        unsetenv("KUBERNETES_SERVICE_HOST");
        KubeConfig *c2 = NULL;
        assert_int_equal(kube_config_in_cluster(tmp, &c2, &e), -ENXIO);
        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        kverr_clear(&e);
        assert_int_equal(kube_config_in_cluster("/nonexistent", &c2, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "/nonexistent/var/run/secrets/kubernetes.io/serviceaccount/token"));
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_url(void **state) {
        (void) state;
        static const struct {
                KubeRef ref;
                const char *sub, *query, *want;
        } cases[] = {
                { { "v1", "pods", "default", "web" }, NULL, NULL, "https://k/api/v1/namespaces/default/pods/web" },
                { { "v1", "nodes", NULL, NULL }, NULL, "limit=5", "https://k/api/v1/nodes?limit=5" },
                { { "kubevirt.io/v1", "virtualmachineinstances", "vms", "a" },
                  "status",
                  NULL,
                  "https://k/apis/kubevirt.io/v1/namespaces/vms/virtualmachineinstances/a/status" },
                { { "kubevirt.io/v1", "virtualmachines", NULL, NULL }, NULL, NULL,
                  "https://k/apis/kubevirt.io/v1/virtualmachines" },
                { { "v1", "pods", "d", "a b/c" }, NULL, NULL, "https://k/api/v1/namespaces/d/pods/a%20b%2Fc" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *url = NULL;
                assert_int_equal(kube_url_build("https://k", &cases[i].ref, cases[i].sub, cases[i].query, &url, NULL), 0);
                assert_string_equal(url, cases[i].want);
        }
        _cleanup_free_ char *q = NULL;
        assert_int_equal(kube_query_add(&q, "labelSelector", "app=web,tier!=db"), 0);
        assert_int_equal(kube_query_add(&q, "fieldSelector", NULL), 0);
        assert_int_equal(kube_query_add(&q, "watch", "1"), 0);
        assert_string_equal(q, "labelSelector=app%3Dweb%2Ctier%21%3Ddb&watch=1");
        char *url = NULL;
        KvErr e = {};
        assert_int_equal(kube_url_build("https://k", &(KubeRef){ "a/b/c", "x" }, NULL, NULL, &url, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'a/b/c' is not GROUP/VERSION"));
        kverr_clear(&e);
        assert_int_equal(kube_url_build("https://k", &(KubeRef){ "v1", NULL }, NULL, NULL, &url, &e), -EINVAL);
        assert_int_equal(kube_url_build("https://k", &(KubeRef){ "v1", "pods", "d" }, "status", NULL, &url, NULL),
                         -EINVAL);
        assert_null(url);
        char desc[128];
        kube_ref_describe(&(KubeRef){ "kubevirt.io/v1", "virtualmachines", "vms", "a" }, desc, sizeof desc);
        assert_string_equal(desc, "virtualmachines.kubevirt.io 'vms/a'");
}

static void test_status_errors(void **state) {
        (void) state;
        KvErr e = {};
        const char *conflict = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"the object has been modified\","
                               "\"reason\":\"Conflict\",\"code\":409}";
        assert_int_equal(kube_status_error(409, conflict, strlen(conflict), "update pods 'd/a'", &e), -EBUSY);
        assert_string_equal(e.msg, "update pods 'd/a': the object has been modified (409 Conflict)");
        assert_string_equal(e.details, "Conflict");
        assert_int_equal(e.code, KV_ERR_TRY_AGAIN);
        kverr_clear(&e);
        const char *exists = "{\"kind\":\"Status\",\"message\":\"pods \\\"a\\\" already exists\",\"reason\":\"AlreadyExists\"}";
        assert_int_equal(kube_status_error(409, exists, strlen(exists), "create pods", &e), -EEXIST);
        assert_int_equal(e.code, KV_ERR_EXISTS);
        kverr_clear(&e);
        assert_int_equal(kube_status_error(502, "Bad Gateway", 11, "get pods", &e), -EIO);
        assert_string_equal(e.msg, "get pods: HTTP 502: Bad Gateway");
        assert_int_equal(kube_http_errno(404, NULL), -ENOENT);
        assert_int_equal(kube_http_errno(410, "Expired"), -ESTALE);
        assert_int_equal(kube_http_errno(422, "Invalid"), -EINVAL);
        assert_int_equal(kube_http_errno(201, NULL), 0);
}

/* ---- the watch stream */

typedef struct Seen {
        unsigned n;
        KubeEventType types[8];
        char names[8][32];
} Seen;

static int record(KubeEventType t, json_t *obj, void *userdata) {
        Seen *s = userdata;
        if (s->n == ELEMENTSOF(s->types))
                return -ENOSPC;
        s->types[s->n] = t;
        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name ? name : (t == KUBE_EVENT_ERROR ? "(status)" : "?"));
        s->n++;
        return 0;
}

static const char stream[] =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\\n\\u00e9\"}}}\r\n"
        "\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n"
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n";

static void check_seen(const Seen *s) {
        assert_int_equal(s->n, 5);
        assert_int_equal(s->types[0], KUBE_EVENT_ADDED);
        assert_string_equal(s->names[0], "a");
        assert_int_equal(s->types[1], KUBE_EVENT_MODIFIED);
        assert_string_equal(s->names[1], "b\n\xc3\xa9");
        assert_int_equal(s->types[2], KUBE_EVENT_BOOKMARK);
        assert_int_equal(s->types[3], KUBE_EVENT_DELETED);
        assert_int_equal(s->types[4], KUBE_EVENT_ERROR);
}

/* The same stream cut in two at every byte, in three at every pair, and byte by byte. */
static void test_watch_split(void **state) {
        (void) state;
        size_t len = strlen(stream);
        for (size_t cut = 0; cut <= len; cut++) {
                Seen s = {};
                KubeLineParser p = {};
                assert_int_equal(kube_line_parser_feed(&p, stream, cut, record, &s, NULL), 0);
                assert_int_equal(kube_line_parser_feed(&p, stream + cut, len - cut, record, &s, NULL), 0);
                check_seen(&s);
                kube_line_parser_done(&p);
        }
        for (size_t a = 1; a < len; a += 7)
                for (size_t b = a; b < len; b += 3) {
                        Seen s = {};
                        KubeLineParser p = {};
                        assert_int_equal(kube_line_parser_feed(&p, stream, a, record, &s, NULL), 0);
                        assert_int_equal(kube_line_parser_feed(&p, stream + a, b - a, record, &s, NULL), 0);
                        assert_int_equal(kube_line_parser_feed(&p, stream + b, len - b, record, &s, NULL), 0);
                        check_seen(&s);
                        kube_line_parser_done(&p);
                }
        Seen s = {};
        KubeLineParser p = {};
        for (size_t i = 0; i < len; i++)
                assert_int_equal(kube_line_parser_feed(&p, stream + i, 1, record, &s, NULL), 0);
        check_seen(&s);
        /* an unfinished line waits for the rest */
        assert_int_equal(kube_line_parser_feed(&p, "{\"type\":\"ADDED\"", 15, record, &s, NULL), 0);
        assert_int_equal(s.n, 5);
        kube_line_parser_done(&p);
}

static void test_watch_bad_lines(void **state) {
        (void) state;
        static const struct {
                const char *line, *want;
        } cases[] = {
                { "not json\n", "watch event" },
                { "{\"type\":\"ADDED\"}\n", "'object'" },
                { "{\"type\":\"SPLIT\",\"object\":{}}\n", "'type' must be ADDED, MODIFIED, DELETED, BOOKMARK or ERROR, got 'SPLIT'" },
                { "{\"type\":7,\"object\":{}}\n", "'type'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Seen s = {};
                KubeLineParser p = {};
                KvErr e = {};
                assert_true(kube_line_parser_feed(&p, cases[i].line, strlen(cases[i].line), record, &s, &e) < 0);
                if (!strstr(e.msg, cases[i].want))
                        fail_msg("case %zu: '%s' does not say \"%s\"", i, e.msg, cases[i].want);
                assert_int_equal(s.n, 0);
                kube_line_parser_done(&p);
        }
}

static void test_ratelimit_backoff(void **state) {
        (void) state;
        KvTokenBucket rl;
        kv_token_bucket_init(&rl, 5, 3, 1000000);
        for (int i = 0; i < 3; i++)
                assert_int_equal(kv_token_bucket_reserve(&rl, 1000000), 0);
        uint64_t w = kv_token_bucket_reserve(&rl, 1000000);
        assert_true(w >= 199000 && w <= 201000); /* the fourth: 1/5 s later */
        w = kv_token_bucket_reserve(&rl, 1000000);
        assert_true(w >= 399000 && w <= 401000); /* queued behind it */
        assert_int_equal(kv_token_bucket_reserve(&rl, 3000000), 0); /* refilled (to the burst at most) */
        kv_token_bucket_init(&rl, 0, 0, 0);
        for (int i = 0; i < 100; i++)
                assert_int_equal(kv_token_bucket_reserve(&rl, 0), 0);
        unsigned seed = 1;
        for (unsigned a = 0; a < 20; a++) {
                unsigned d = kube_backoff_ms(a, 250, 30000, &seed);
                unsigned full = a >= 7 ? 30000 : 250u << a;
                if (d < full - full / 2 || d > full)
                        fail_msg("attempt %u: %u ms not in [%u, %u]", a, d, full - full / 2, full);
        }
}

/* LIST pages: items gathered in order, the continue token handed on; a bad page refused naming what is wrong, with
 * nothing of it appended; a server handing out the token it was asked with refused (it would loop for ever). */
static json_t *page(const char *text) {
        json_error_t je;
        json_t *o = json_loads(text, 0, &je);
        assert_non_null(o);
        return o;
}

static void page_bad(const char *text, const char *prev, const char *needle) {
        _cleanup_json_ json_t *p = page(text), *acc = json_array();
        const char *cont = "x";
        KvErr e = {};
        assert_true(kube_list_page(p, &acc, prev, &cont, "list pods", &e) < 0);
        assert_int_equal(e.code, KV_ERR_DECODE);
        assert_null(cont);
        assert_int_equal(json_array_size(acc), 0);
        if (!strstr(e.msg, needle) || !strstr(e.msg, "list pods"))
                fail_msg("'%s': error '%s' lacks '%s'", text, e.msg, needle);
}

static void test_list_pages(void **state) {
        (void) state;
        json_t *acc = NULL;
        const char *cont;
        KvErr e = {};
        _cleanup_json_ json_t *p1 = page("{\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"tok1\"},"
                                          "\"items\":[{\"metadata\":{\"name\":\"a\"}},"
                                          "{\"metadata\":{\"name\":\"b\"}}]}");
        assert_int_equal(kube_list_page(p1, &acc, NULL, &cont, "list pods", &e), 0);
        assert_string_equal(cont, "tok1");
        _cleanup_json_ json_t *p2 =
                page("{\"metadata\":{\"continue\":\"\"},\"items\":[{\"metadata\":{\"name\":\"c\"}}]}");
        assert_int_equal(kube_list_page(p2, &acc, "tok1", &cont, "list pods", &e), 0);
        assert_null(cont); /* the last page */
        assert_int_equal(json_array_size(acc), 3);
        json_t *md = json_object_get(json_array_get(acc, 2), "metadata");
        assert_string_equal(json_string_value(json_object_get(md, "name")), "c");
        _cleanup_json_ json_t *p3 = page("{\"items\":null}"); /* no items: nothing, not an error */
        assert_int_equal(kube_list_page(p3, &acc, NULL, &cont, "list pods", &e), 0);
        assert_int_equal(json_array_size(acc), 3);
        json_decref(acc);

        page_bad("{\"items\":{}}", NULL, "'items' must be a list");
        page_bad("{\"items\":[{},3]}", NULL, "items[1] must be an object");
        page_bad("{\"metadata\":{\"continue\":7},\"items\":[]}", NULL, "'metadata.continue' must be a string");
        page_bad("{\"metadata\":{\"continue\":\"tok1\"},\"items\":[{}]}", "tok1", "names the same token again");
}

static void test_base64_yaml(void **state) {
        (void) state;
        _cleanup_free_ char *d = NULL;
        size_t n;
        assert_int_equal(base64_decode("aGVs\nbG8=", &d, &n), 0);
        assert_int_equal(n, 5);
        assert_string_equal(d, "hello");
        char *bad = NULL;
        assert_int_equal(base64_decode("a=b", &bad, NULL), -EINVAL);
        _cleanup_json_ json_t *v = NULL;
        const char *y = "a: {b: [x, 'y']}\nc: ~\nd: \"true\"\n";
        assert_int_equal(kube_yaml_parse(y, strlen(y), "t", &v, NULL), 0);
        _cleanup_free_ char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(text, "{\"a\":{\"b\":[\"x\",\"y\"]},\"c\":null,\"d\":\"true\"}");
}

/* kube/wire.c: a request and its outcome through JSON and back (netd's `kube` verb). */
static void test_wire(void **state) {
        (void) state;
        _cleanup_json_ json_t *body = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "a", "b");
        KubeRequest req = { .verb = KUBE_PATCH, .ref = { "v1", "pods", "default", "web" }, .body = body };
        _cleanup_json_ json_t *o = kube_request_to_json(&req);
        assert_non_null(o);
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(text, "{\"apiVersion\":\"v1\",\"body\":{\"metadata\":{\"annotations\":{\"a\":\"b\"}}},"
                                  "\"name\":\"web\",\"namespace\":\"default\",\"resource\":\"pods\",\"verb\":\"patch\"}");
        KubeRequest back;
        KvErr e = {};
        assert_int_equal(kube_request_from_json(o, &back, &e), 0);
        assert_int_equal(back.verb, KUBE_PATCH);
        assert_string_equal(back.ref.group_version, "v1");
        assert_string_equal(back.ref.resource, "pods");
        assert_string_equal(back.ref.namespace, "default");
        assert_string_equal(back.ref.name, "web");
        assert_true(json_equal(back.body, body));
        /* a collection: no name */
        KubeRequest create = { .verb = KUBE_CREATE, .ref = { "v1", "events", "ns", NULL } };
        _cleanup_json_ json_t *c = kube_request_to_json(&create);
        assert_null(json_object_get(c, "name"));
        assert_int_equal(kube_request_from_json(c, &back, &e), 0);
        assert_null(back.ref.name);
        assert_int_equal(back.verb, KUBE_CREATE);

        static const struct {
                const char *in, *msg;
        } bad[] = {
                { "[]", "must be an object" },
                { "{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"x\":1}", "unknown key 'x'" },
                { "{\"verb\":\"steal\",\"apiVersion\":\"v1\",\"resource\":\"pods\"}", "got 'steal'" },
                { "{\"verb\":\"get\",\"resource\":\"pods\"}", "apiVersion" },
                { "{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":7}", "resource" },
                { "{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"body\":[1]}", "'body' must be an object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_ json_t *b = json_loads(bad[i].in, 0, NULL);
                KvErr be = {};
                assert_non_null(b);
                assert_true(kube_request_from_json(b, &back, &be) < 0);
                if (!strstr(be.msg, bad[i].msg))
                        fail_msg("%s: '%s' lacks '%s'", bad[i].in, be.msg, bad[i].msg);
        }

        /* outcomes */
        _cleanup_json_ json_t *obj = json_pack("{s:s}", "kind", "Pod");
        _cleanup_json_ json_t *ok = kube_outcome_to_json(0, obj, NULL);
        json_t *got = NULL;
        assert_int_equal(kube_outcome_from_json(ok, &got, &e), 0);
        assert_true(json_equal(got, obj));
        json_decref(got);
        KvErr nf = { .code = 11 };
        snprintf(nf.msg, sizeof nf.msg, "pods \"x\" not found");
        _cleanup_json_ json_t *err = kube_outcome_to_json(-ENOENT, NULL, &nf);
        KvErr ge = {};
        assert_int_equal(kube_outcome_from_json(err, &got, &ge), -ENOENT);
        assert_null(got);
        assert_int_equal(ge.code, 11);
        assert_string_equal(ge.msg, "pods \"x\" not found");
        _cleanup_json_ json_t *odd = json_pack("{s:{s:i}}", "error", "errno", 99999);
        KvErr oe = {};
        assert_int_equal(kube_outcome_from_json(odd, &got, &oe), -EPROTO);
        _cleanup_json_ json_t *none = json_object();
        assert_int_equal(kube_outcome_from_json(none, &got, &oe), -EPROTO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wire),
                cmocka_unit_test_setup_teardown(test_config_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_certs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_in_cluster, setup, teardown),
                cmocka_unit_test(test_url),
                cmocka_unit_test(test_status_errors),
                cmocka_unit_test(test_watch_split),
                cmocka_unit_test(test_watch_bad_lines),
                cmocka_unit_test(test_ratelimit_backoff),
                cmocka_unit_test(test_list_pages),
                cmocka_unit_test(test_base64_yaml),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
