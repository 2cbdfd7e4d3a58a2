/* SPDX-License-Identifier: Apache-2.0 */
/* cnichain: a thin command line over node/'s CNI runtime (libcni semantics), for the integration tests.
 *
 *   cnichain add|del|check|status|gc|version CONFLIST CONTAINERID NETNS IFNAME
 *            [--args K=V;...] [--cap NAME=JSON]... [--cache-dir DIR] [--path DIR:DIR] [--valid CID:IF,...]
 *
 * ADD runs the plugins in order (name, cniVersion and prevResult injected, runtimeConfig limited to the
 * capabilities each plugin declares), caches the final result and the capability args under
 * CACHE/results/<network>-<cid>-<ifname>, and prints the result. DEL runs in reverse with the cached
 * result/capabilities, then removes the cache entry. CHECK runs in order with the cached result.
 * STATUS and GC run only for plugins whose VERSION reply lists 1.1.0. VERSION prints a JSON array
 * [{"type":..., "reply":...}]. Plugins get this tool's environment (minus CNI_*) and its stderr.
 * A plugin failure prints its error object on stderr, a line "cnichain: <type> <CMD> failed: code N"
 * and exits 1. Usage errors exit 2. A failing ADD is not rolled back (as libcni does not). */
#include <jansson.h>

#include "common/json-util.h"
#include "node/node.h"

extern char **environ;

#define MAX_OUTPUT (16u << 20)
#define MAX_CAPS 32

static void die_usage(const char *msg) {
        fprintf(stderr, "cnichain: %s\n", msg);
        fprintf(stderr, "usage: cnichain add|del|check|status|gc|version CONFLIST CONTAINERID NETNS IFNAME\n"
                        "       [--args K=V;...] [--cap NAME=JSON]... [--cache-dir DIR] [--path DIR:DIR]\n"
                        "       [--valid CID:IFNAME,...]\n");
        exit(2);
}

/* Reports e on stderr; returns r. */
static int report(const NodeErr *e, int r) {
        if (e->kind == NODE_ERR_PLUGIN) {
                fprintf(stderr, "%s\n", e->output && *e->output ? e->output : "(no output)");
                fprintf(stderr, "cnichain: %s %s failed: code %lld (exit status %d)\n", e->plugin, e->command, e->code,
                        e->exit_status);
        } else if (e->kind != NODE_ERR_NONE)
                fprintf(stderr, "cnichain: %s%s%s\n", e->msg, e->details[0] ? ": " : "", e->details);
        else
                fprintf(stderr, "cnichain: %s\n", strerror(-r));
        return r;
}

static void print_json(const char *raw) {
        json_error_t jerr;
        json_t *v = json_loads(raw, JSON_DECODE_ANY, &jerr);
        char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
        printf("%s\n", s ? s : raw);
        free(s);
        json_decref(v);
}

static int cmd_version(const NodeCniRuntime *rt, const NodeCniNetwork *net, NodeErr *e) {
        NodeCniVersion *v = NULL;
        size_t n = 0;
        int r = node_cni_version(rt, net, &v, &n, e);
        if (!v)
                return report(e, r);
        if (r < 0)
                (void) report(e, r);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                json_error_t jerr;
                json_t *reply = v[i].reply ? json_loads(v[i].reply, 0, &jerr) : NULL;
                json_array_append_new(arr, json_pack("{s:s, s:o}", "type", v[i].type, "reply", reply ? reply : json_null()));
        }
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(arr);
        node_cni_versions_free(v, n);
        return r;
}

static int cmd_status_gc(const NodeCniRuntime *rt, const NodeCniNetwork *net, bool gc, const char *valid, NodeErr *e) {
        const char *command = gc ? "GC" : "STATUS";
        if (node_cni_version_cmp(net->cni_version, "1.1.0") < 0) {
                fprintf(stderr, "cnichain: %s skipped: config list version %s < 1.1.0\n", command, net->cni_version);
                return 0;
        }
        if (gc && net->disable_gc) {
                fprintf(stderr, "cnichain: GC disabled by the config list\n");
                return 0;
        }
        _cleanup_free_ bool *ran = calloc(net->n_plugins, sizeof *ran);
        _cleanup_free_ NodeCniGcAttachment *att = NULL;
        _cleanup_free_ char *dup = valid ? strdup(valid) : NULL;
        size_t n_att = 0;
        if (!ran || (valid && !dup))
                return -ENOMEM;
        if (dup) {
                char *save = NULL;
                for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        char *colon = strchr(t, ':');
                        if (!colon) {
                                fprintf(stderr, "cnichain: --valid: '%s' is not CID:IFNAME\n", t);
                                exit(2);
                        }
                        *colon = '\0';
                        NodeCniGcAttachment *na = realloc(att, (n_att + 1) * sizeof *na);
                        if (!na)
                                return -ENOMEM;
                        att = na;
                        att[n_att++] = (NodeCniGcAttachment) { t, colon + 1 };
                }
                if (!att && !(att = calloc(1, sizeof *att)))
                        return -ENOMEM;
        }
        int r = gc ? node_cni_gc(rt, net, att, n_att, ran, e) : node_cni_status(rt, net, ran, e);
        if (r < 0)
                return report(e, r);
        for (size_t i = 0; i < net->n_plugins; i++)
                if (!ran[i])
                        fprintf(stderr, "cnichain: %s: skipping '%s' (does not support 1.1.0)\n", command,
                                net->plugins[i].type);
        return 0;
}

int main(int argc, char **argv) {
        const char *args = NULL, *cache_dir = "/var/lib/cni", *valid = NULL, *pos[5];
        const char *env_path = getenv("CNI_PATH");
        const char *path = env_path && *env_path ? env_path : "/usr/lib/cni";
        NodeCniArg caps[MAX_CAPS];
        char *cap_names[MAX_CAPS];
        size_t n_caps = 0;
        int npos = 0;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (a[0] == '-' && a[1] == '-') {
                        if (i + 1 >= argc)
                                die_usage("option needs a value");
                        const char *v = argv[++i];
                        if (streq(a, "--args"))
                                args = v;
                        else if (streq(a, "--cache-dir"))
                                cache_dir = v;
                        else if (streq(a, "--path"))
                                path = v;
                        else if (streq(a, "--valid"))
                                valid = v;
                        else if (streq(a, "--cap")) {
                                const char *eq = strchr(v, '=');
                                if (!eq || eq == v)
                                        die_usage("--cap needs NAME=JSON");
                                if (n_caps >= MAX_CAPS)
                                        die_usage("too many --cap");
                                json_error_t jerr;
                                json_t *val = json_loads(eq + 1, JSON_DECODE_ANY, &jerr);
                                cap_names[n_caps] = strndup(v, (size_t) (eq - v));
                                if (!val) {
                                        fprintf(stderr, "cnichain: --cap %s: invalid JSON: %s\n", cap_names[n_caps],
                                                jerr.text);
                                        return 2;
                                }
                                json_decref(val);
                                caps[n_caps] = (NodeCniArg) { cap_names[n_caps], eq + 1 };
                                n_caps++;
                        } else
                                die_usage("unknown option");
                } else {
                        if (npos >= 5)
                                die_usage("too many arguments");
                        pos[npos++] = a;
                }
        }
        if (npos < 2)
                die_usage("missing command or config list");
        const char *cmd = pos[0];
        bool attach = streq(cmd, "add") || streq(cmd, "del") || streq(cmd, "check");
        if (attach && npos != 5)
                die_usage("add/del/check need CONFLIST CONTAINERID NETNS IFNAME");
        if (!attach && !streq(cmd, "status") && !streq(cmd, "gc") && !streq(cmd, "version"))
                die_usage("unknown command");

        NodeErr e = { 0 };
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        int r = node_cni_network_load_file(pos[1], &net, &e);
        if (r < 0) {
                (void) report(&e, r);
                return 2;
        }
        _cleanup_(node_cni_runtime_freep) NodeCniRuntime *rt = NULL;
        r = node_cni_runtime_new(path, cache_dir, &rt, &e);
        if (r < 0) {
                (void) report(&e, r);
                return 2;
        }
        rt->stderr_fd = STDERR_FILENO;
        rt->output_max = MAX_OUTPUT;
        if (node_cni_runtime_set_env(rt, environ) < 0)
                return 1;

        _cleanup_free_ char *args_buf = strdup(args ? args : "");
        _cleanup_free_ NodeCniArg *pairs = NULL;
        size_t n_pairs = 0;
        if (!args_buf)
                return 1;
        if (node_cni_args_split(args_buf, &pairs, &n_pairs, &e) < 0) {
                (void) report(&e, -EINVAL);
                return 2;
        }
        NodeCniAttachment a = { .container_id = npos > 2 ? pos[2] : "",
                                .netns = npos > 3 ? pos[3] : "",
                                .ifname = npos > 4 ? pos[4] : "",
                                .args = pairs,
                                .n_args = n_pairs,
                                .caps = caps,
                                .n_caps = n_caps };

        if (streq(cmd, "add")) {
                _cleanup_(node_cni_result_freep) NodeCniResult *res = NULL;
                r = node_cni_add(rt, net, &a, 0, &res, &e);
                if (r >= 0)
                        print_json(res->raw);
        } else if (streq(cmd, "del"))
                r = node_cni_del(rt, net, &a, &e);
        else if (streq(cmd, "check")) {
                if (net->disable_check)
                        fprintf(stderr, "cnichain: CHECK disabled by the config list\n");
                r = node_cni_check(rt, net, &a, &e);
        } else if (streq(cmd, "version"))
                r = cmd_version(rt, net, &e);
        else
                r = cmd_status_gc(rt, net, streq(cmd, "gc"), valid, &e);
        if (r < 0 && !streq(cmd, "version") && !streq(cmd, "status") && !streq(cmd, "gc"))
                (void) report(&e, r);

        node_err_done(&e);
        for (size_t i = 0; i < n_caps; i++)
                free(cap_names[i]);
        return r < 0 ? 1 : 0;
}
