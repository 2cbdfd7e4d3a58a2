/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-multus: a CNI meta plugin with Multus's thin-plugin config. The environment and stdin in, each
 * command to add.c / del.c, the result or one CNI error object out (nothing else on stdout). */
#include <ctype.h>
#include <stdarg.h>
#include <time.h>

#include "common/json-util.h"
#include "multus-compat/plugin/plugin.h"

extern char **environ;

static const char *const command_table[_MC_CMD_MAX] = {
        [MC_CMD_ADD] = "ADD", [MC_CMD_DEL] = "DEL",     [MC_CMD_CHECK] = "CHECK",
        [MC_CMD_STATUS] = "STATUS", [MC_CMD_GC] = "GC", [MC_CMD_VERSION] = "VERSION",
};

const char *mc_getenv(char *const *envp, const char *name) {
        size_t n = strlen(name);
        for (; envp && *envp; envp++)
                if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
                        return *envp + n + 1;
        return NULL;
}

static int print_json(FILE *out, json_t *o) {
        if (!o)
                return -ENOMEM;
        if (json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 || fputc('\n', out) == EOF || fflush(out) == EOF)
                return -EIO;
        return 0;
}

static int read_stdin(FILE *in, McPlugin *p, KvErr *e) {
        size_t cap = 0;
        char chunk[4096];
        for (size_t n; (n = fread(chunk, 1, sizeof chunk, in)) > 0;) {
                if (p->stdin_len + n > MC_CONFIG_MAX)
                        return kverr_set(e, KV_ERR_DECODE, -E2BIG, "stdin: config larger than %u bytes", MC_CONFIG_MAX);
                if (p->stdin_len + n + 1 > cap) {
                        cap = (p->stdin_len + n + 1) * 2;
                        char *nb = realloc(p->stdin_text, cap);
                        if (!nb)
                                return -ENOMEM;
                        p->stdin_text = nb;
                }
                memcpy(p->stdin_text + p->stdin_len, chunk, n);
                p->stdin_len += n;
        }
        if (ferror(in))
                return kverr_set(e, KV_ERR_IO, -EIO, "stdin: read failed");
        if (!p->stdin_text && !(p->stdin_text = strdup("")))
                return -ENOMEM;
        p->stdin_text[p->stdin_len] = '\0';
        return 0;
}

/* The version errors and VERSION carry: the config's when it is one of ours (even a config that fails). */
static const char *peek_version(const McPlugin *p) {
        static const char *const v[] = { MC_SUPPORTED_VERSIONS };
        const char *want = p->conf ? p->conf->cni_version : NULL;
        _cleanup_json_ json_t *o = !want && p->stdin_text ? json_loads(p->stdin_text, 0, NULL) : NULL;
        if (!want)
                want = json_string_value(json_object_get(o, "cniVersion"));
        for (size_t i = 0; want && i < ELEMENTSOF(v); i++)
                if (streq(want, v[i]))
                        return v[i];
        return "1.1.0";
}

static int cmd_version(const McPlugin *p, FILE *out) {
        static const char *const v[] = { MC_SUPPORTED_VERSIONS };
        json_t *o = json_pack("{s:s,s:[]}", "cniVersion", peek_version(p), "supportedVersions");
        for (size_t i = 0; o && i < ELEMENTSOF(v); i++)
                json_array_append_new(json_object_get(o, "supportedVersions"), json_string(v[i]));
        int r = print_json(out, o);
        json_decref(o);
        return r;
}

static int require_env(const char *v, const char *name, KvErr *e) {
        if (!v || !*v)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "%s is required", name);
        return 0;
}

/* KVNET_MULTUS_INTERFACE: ADD or DEL of that one secondary interface (hotplug.c); other commands refuse it
 * rather than silently act on the whole pod. */
static int parse_hotplug(McPlugin *p, KvErr *e) {
        p->hotplug = mc_getenv(p->envp, MC_HOTPLUG_ENV);
        if (!p->hotplug)
                return 0;
        if (p->command != MC_CMD_ADD && p->command != MC_CMD_DEL)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "%s='%s': only ADD and DEL take it, not %s", MC_HOTPLUG_ENV,
                                 p->hotplug, command_table[p->command]);
        if (!mc_ifname_valid(p->hotplug))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "%s='%s' is not an interface name (1..%d characters, no '/', ':' or whitespace)",
                                 MC_HOTPLUG_ENV, p->hotplug, MC_IFNAME_MAX);
        if (streq(p->hotplug, p->ifname))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "%s='%s' is CNI_IFNAME, the cluster network's interface: only secondary networks are hot-plugged",
                                 MC_HOTPLUG_ENV, p->hotplug);
        return 0;
}

static int parse_env(McPlugin *p, KvErr *e) {
        p->container_id = mc_getenv(p->envp, "CNI_CONTAINERID");
        p->netns = mc_getenv(p->envp, "CNI_NETNS");
        p->ifname = mc_getenv(p->envp, "CNI_IFNAME");
        p->path = mc_getenv(p->envp, "CNI_PATH");
        int r = 0;
        if (p->command == MC_CMD_ADD || p->command == MC_CMD_CHECK)
                if ((r = require_env(p->netns, "CNI_NETNS", e)) < 0)
                        return r;
        if (p->command <= MC_CMD_CHECK) {
                if ((r = require_env(p->container_id, "CNI_CONTAINERID", e)) < 0 || (r = require_env(p->ifname, "CNI_IFNAME", e)) < 0)
                        return r;
                if (!mc_ifname_valid(p->ifname))
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "CNI_IFNAME '%s' is not a valid interface name",
                                         p->ifname);
        }
        return parse_hotplug(p, e);
}

/* CNI_ARGS: the K8S_POD_* keys kept apart (node/ writes them, with IgnoreUnknown=1, for a pod); every other
 * pair is forwarded to the delegates, as Multus does, IgnoreUnknown too when there is no pod. */
static int parse_args(McPlugin *p, KvErr *e) {
        const char *s = mc_getenv(p->envp, "CNI_ARGS"), *ignore = NULL;
        NodeErr ne = {};
        NodeCniArg *v = NULL;
        size_t n = 0;
        if (!s || !*s)
                return 0;
        if (!(p->args_buf = strdup(s)))
                return -ENOMEM;
        int r = node_cni_args_split(p->args_buf, &v, &n, &ne);
        node_err_done(&ne);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_ENV, r, "CNI_ARGS: '%s' is not K=V;K=V", s);
        p->args = v;
        for (size_t i = 0; i < n; i++) {
                char **dst = streq(v[i].key, "K8S_POD_NAMESPACE") ? &p->pod_ns
                           : streq(v[i].key, "K8S_POD_NAME")      ? &p->pod_name
                           : streq(v[i].key, "K8S_POD_UID")       ? &p->pod_uid
                                                                  : NULL;
                if (streq(v[i].key, "IgnoreUnknown"))
                        ignore = v[i].value;
                if (dst && *v[i].value && !(*dst = strdup(v[i].value)))
                        return -ENOMEM;
                if (!dst && !streq(v[i].key, "IgnoreUnknown") && !streq(v[i].key, "K8S_POD_INFRA_CONTAINER_ID"))
                        p->args[p->n_args++] = v[i];
        }
        if (!p->pod_ns != !p->pod_name)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME go together");
        if (ignore && !p->pod_name) { /* room: IgnoreUnknown itself was dropped */
                memmove(p->args + 1, p->args, p->n_args * sizeof *p->args);
                p->args[0] = (NodeCniArg) { "IgnoreUnknown", ignore };
                p->n_args++;
        }
        return 0;
}

static int setup_runtime(McPlugin *p, KvErr *e) {
        _cleanup_free_ char *path = NULL;
        NodeErr ne = {};
        if (asprintf(&path, "%s%s%s", p->conf->bin_dir, p->path && *p->path ? ":" : "", p->path ? p->path : "") < 0)
                return -ENOMEM;
        /* the delegates get our environment without KVNET_MULTUS_INTERFACE (node/ drops the CNI_* variables) */
        size_t n = 0;
        for (char *const *v = p->envp; v && *v; v++)
                n++;
        _cleanup_free_ char **env = calloc(n + 1, sizeof *env);
        if (!env)
                return -ENOMEM;
        n = 0;
        for (char *const *v = p->envp; v && *v; v++)
                if (strncmp(*v, MC_HOTPLUG_ENV "=", sizeof MC_HOTPLUG_ENV) != 0)
                        env[n++] = *v;
        int r = node_cni_runtime_new(path, p->conf->cni_dir, &p->rt, &ne);
        if (r >= 0)
                r = node_cni_runtime_set_env(p->rt, env);
        if (r < 0)
                kverr_set(e, KV_ERR_INVALID_CONFIG, r, "binDir/CNI_PATH '%s', cniDir '%s': %s", path, p->conf->cni_dir,
                          ne.msg[0] ? ne.msg : strerror(-r));
        node_err_done(&ne);
        return r;
}

static int run(McPlugin *p, FILE *in, FILE *out, KvErr *e) {
        const char *cmd = mc_getenv(p->envp, "CNI_COMMAND");
        int r;
        for (p->command = 0; p->command < _MC_CMD_MAX; p->command++)
                if (cmd && streq(cmd, command_table[p->command]))
                        break;
        if (p->command == _MC_CMD_MAX)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "CNI_COMMAND '%s' is not ADD, DEL, CHECK, STATUS, GC or VERSION",
                                 cmd ? cmd : "");
        if ((r = read_stdin(in, p, e)) < 0)
                return r;
        if (p->command == MC_CMD_VERSION)
                return cmd_version(p, out);
        if ((r = mc_config_parse(p->stdin_text, p->stdin_len, &p->conf, e)) < 0)
                return r;
        if (!streq(peek_version(p), p->conf->cni_version))
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -ENOTSUP,
                                 "netconf: 'cniVersion' %s is not supported (0.3.0 .. 1.1.0)", p->conf->cni_version);
        if ((r = parse_env(p, e)) < 0 || (r = parse_args(p, e)) < 0 || (r = setup_runtime(p, e)) < 0)
                return r;
        switch (p->command) {
        case MC_CMD_ADD: return p->hotplug ? mc_cmd_add_one(p, out, e) : mc_cmd_add(p, out, e);
        case MC_CMD_DEL: return p->hotplug ? mc_cmd_del_one(p, e) : mc_cmd_del(p, e);
        case MC_CMD_CHECK: return mc_cmd_check(p, e);
        case MC_CMD_STATUS: return mc_cmd_status(p, e);
        default: return mc_cmd_gc(p, e);
        }
}

/* logFile opened for appending (NULL: none), ts the time now as the lines start with it. */
static FILE *log_open(const McConfig *c, char ts[static 32]) {
        if (!c || !c->log_file)
                return NULL;
        FILE *f = fopen(c->log_file, "ae");
        time_t t = time(NULL);
        strftime(ts, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        return f;
}

void mc_log_note(const McPlugin *p, const char *fmt, ...) {
        char ts[32];
        _cleanup_fclose_ FILE *f = log_open(p->conf, ts);
        if (!f)
                return;
        fprintf(f, "%s [warning] kvnet-multus container %s pod %s/%s: ", ts, p->container_id ? p->container_id : "-",
                p->pod_ns ? p->pod_ns : "-", p->pod_name ? p->pod_name : "-");
        va_list ap;
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
}

/* logFile/logLevel: one line per call, the top of the chain (errors always; every call at verbose or debug). */
static void log_call(const McPlugin *p, int r, const KvErr *e) {
        const McConfig *c = p->conf;
        if (!c || !c->log_file || p->command >= _MC_CMD_MAX || p->command == MC_CMD_VERSION)
                return;
        bool verbose = c->log_level && (streq(c->log_level, "verbose") || streq(c->log_level, "debug"));
        if (r >= 0 && !verbose)
                return;
        char ts[32];
        _cleanup_fclose_ FILE *f = log_open(c, ts);
        if (!f)
                return;
        fprintf(f, "%s [%s] kvnet-multus %s container %s pod %s/%s: ", ts, r < 0 ? "error" : "verbose",
                command_table[p->command], p->container_id ? p->container_id : "-", p->pod_ns ? p->pod_ns : "-",
                p->pod_name ? p->pod_name : "-");
        if (p->hotplug)
                fprintf(f, "%s %s: ", MC_HOTPLUG_ENV, p->hotplug);
        if (r < 0)
                fprintf(f, "code %d: %s%s%s\n", e->code, e->msg, e->details[0] ? ": " : "", e->details);
        else
                fputs("ok\n", f);
}

int main(void) {
        McPlugin p = { .envp = environ, .api_fd = -1 };
        KvErr e = {};
        int r = run(&p, stdin, stdout, &e);
        if (r < 0 && !kverr_is_set(&e))
                kverr_set_errno(&e, KV_ERR_INTERNAL, r, "internal error");
        log_call(&p, r, &e);
        if (r < 0) {
                json_t *o = json_pack("{s:s,s:i,s:s}", "cniVersion", peek_version(&p), "code", e.code, "msg", e.msg);
                if (o && e.details[0])
                        json_object_set_new(o, "details", json_string(e.details));
                (void) print_json(stdout, o);
                json_decref(o);
        }
#ifndef __SANITIZE_ADDRESS__
        /* The runtime has the answer once this process exits: nothing below changes what it sees, and tearing down
         * the API connections, libcurl and OpenSSL costs ~1-2 ms of every pod's start. A sanitizer build frees
         * everything, so that the leak checker still sees every allocation. */
        if (fflush(stdout) == 0)
                _exit(r < 0 ? 1 : 0);
#endif
        mc_api_close(&p);
        node_cni_runtime_free(p.rt);
        mc_config_free(p.conf);
        free(p.stdin_text);
        free(p.args_buf);
        free(p.args);
        free(p.pod_ns);
        free(p.pod_name);
        free(p.pod_uid);
        mc_claim_uses_free(p.claims, p.n_claims);
        mc_fetched_free(p.fetched, p.n_fetched);
        return r < 0 ? 1 : 0;
}
