/* SPDX-License-Identifier: Apache-2.0 */
/* cnichain: a small libcni-equivalent runner for CNI network config lists, for the integration tests.
 *
 *   cnichain add|del|check|status|gc|version CONFLIST CONTAINERID NETNS IFNAME
 *            [--args K=V;...] [--cap NAME=JSON]... [--cache-dir DIR] [--path DIR:DIR] [--valid CID:IF,...]
 *
 * ADD runs the plugins in order (name, cniVersion and prevResult injected, runtimeConfig limited to the
 * capabilities each plugin declares), caches the final result and the capability args under
 * CACHE/results/<network>-<cid>-<ifname>, and prints the result. DEL runs in reverse with the cached
 * result/capabilities, then removes the cache entry. CHECK runs in order with the cached result.
 * STATUS and GC run only for plugins whose VERSION reply lists 1.1.0. VERSION prints a JSON array
 * [{"type":..., "reply":...}].
 * A plugin failure prints its error object on stderr, a line "cnichain: <type> <CMD> failed: code N"
 * and exits 1. Usage errors exit 2. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/util.h"

#define MAX_OUTPUT (16u << 20)
#define MAX_CONF (8u << 20)

typedef struct Opts {
        const char *cmd;
        const char *conflist;
        const char *cid;
        const char *netns;
        const char *ifname;
        const char *args;
        const char *cache_dir;
        const char *path;
        const char *valid;
        json_t *caps; /* object name -> value */
} Opts;

typedef struct Chain {
        const char *name;
        const char *version;
        json_t *root;
        json_t *plugins; /* array, borrowed from root (or a synthesised one) */
        bool disable_check;
        bool disable_gc;
        json_t *own; /* synthesised one-plugin list for a single config */
} Chain;

static void die_usage(const char *msg) {
        fprintf(stderr, "cnichain: %s\n", msg);
        fprintf(stderr, "usage: cnichain add|del|check|status|gc|version CONFLIST CONTAINERID NETNS IFNAME\n"
                        "       [--args K=V;...] [--cap NAME=JSON]... [--cache-dir DIR] [--path DIR:DIR]\n"
                        "       [--valid CID:IFNAME,...]\n");
        exit(2);
}

static int version_cmp(const char *a, const char *b) {
        int va[3] = { 0 }, vb[3] = { 0 };
        sscanf(a ? a : "0.0.0", "%d.%d.%d", &va[0], &va[1], &va[2]);
        sscanf(b ? b : "0.0.0", "%d.%d.%d", &vb[0], &vb[1], &vb[2]);
        for (int i = 0; i < 3; i++)
                if (va[i] != vb[i])
                        return va[i] < vb[i] ? -1 : 1;
        return 0;
}

static int load_chain(const char *path, Chain *c) {
        json_error_t jerr;
        c->root = json_load_file(path, 0, &jerr);
        if (!c->root || !json_is_object(c->root)) {
                fprintf(stderr, "cnichain: %s: invalid JSON: %s (line %d)\n", path, c->root ? "not an object" : jerr.text,
                        jerr.line);
                return -EINVAL;
        }
        c->name = json_string_value(json_object_get(c->root, "name"));
        c->version = json_string_value(json_object_get(c->root, "cniVersion"));
        if (!c->name || !c->version) {
                fprintf(stderr, "cnichain: %s: 'name' and 'cniVersion' are required strings\n", path);
                return -EINVAL;
        }
        c->disable_check = json_is_true(json_object_get(c->root, "disableCheck"));
        c->disable_gc = json_is_true(json_object_get(c->root, "disableGC"));
        c->plugins = json_object_get(c->root, "plugins");
        if (!c->plugins) {
                /* A single network config: a one-plugin list. */
                if (!json_is_string(json_object_get(c->root, "type"))) {
                        fprintf(stderr, "cnichain: %s: neither 'plugins' nor 'type'\n", path);
                        return -EINVAL;
                }
                json_t *arr = json_array();
                json_array_append(arr, c->root);
                c->own = arr;
                c->plugins = arr;
        }
        if (!json_is_array(c->plugins) || json_array_size(c->plugins) == 0) {
                fprintf(stderr, "cnichain: %s: 'plugins' must be a non-empty array\n", path);
                return -EINVAL;
        }
        size_t i;
        json_t *p;
        json_array_foreach(c->plugins, i, p) {
                if (!json_is_object(p) || !json_is_string(json_object_get(p, "type"))) {
                        fprintf(stderr, "cnichain: %s: plugins[%zu] lacks a string 'type'\n", path, i);
                        return -EINVAL;
                }
        }
        return 0;
}

static int find_plugin(const char *path, const char *type, char ret[PATH_MAX]) {
        if (strchr(type, '/'))
                return -EINVAL;
        _cleanup_free_ char *dup = strdup(path);
        if (!dup)
                return -ENOMEM;
        char *save = NULL;
        for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (snprintf(ret, PATH_MAX, "%s/%s", d, type) >= PATH_MAX)
                        continue;
                if (access(ret, X_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}

/* Runs one plugin; *ret_out gets its stdout (NUL-terminated), *ret_status the exit status. */
static int exec_plugin(const Opts *o, const char *type, const char *command, const char *stdin_data, char **ret_out,
                       int *ret_status) {
        char bin[PATH_MAX];
        int r = find_plugin(o->path, type, bin);
        if (r < 0) {
                fprintf(stderr, "cnichain: plugin '%s' not found in '%s'\n", type, o->path);
                return r;
        }

        _cleanup_close_ int in = memfd_create("cnichain-stdin", MFD_CLOEXEC);
        if (in < 0)
                return negative_errno();
        size_t len = strlen(stdin_data);
        for (size_t off = 0; off < len;) {
                ssize_t n = write(in, stdin_data + off, len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                off += (size_t) n;
        }
        if (lseek(in, 0, SEEK_SET) < 0)
                return negative_errno();

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int out = pfd[0];

        pid_t pid = fork();
        if (pid < 0) {
                close(pfd[1]);
                return negative_errno();
        }
        if (pid == 0) {
                if (dup2(in, 0) < 0 || dup2(pfd[1], 1) < 0)
                        _exit(127);
                setenv("CNI_COMMAND", command, 1);
                setenv("CNI_PATH", o->path, 1);
                bool attach = !streq(command, "VERSION") && !streq(command, "STATUS") && !streq(command, "GC");
                if (attach) {
                        setenv("CNI_CONTAINERID", o->cid, 1);
                        setenv("CNI_NETNS", o->netns, 1);
                        setenv("CNI_IFNAME", o->ifname, 1);
                        setenv("CNI_ARGS", o->args ? o->args : "", 1);
                } else {
                        unsetenv("CNI_CONTAINERID");
                        unsetenv("CNI_NETNS");
                        unsetenv("CNI_IFNAME");
                        unsetenv("CNI_ARGS");
                }
                execl(bin, bin, (char *) NULL);
                fprintf(stderr, "cnichain: exec %s: %m\n", bin);
                _exit(127);
        }
        close(pfd[1]);

        size_t out_len = 0;
        r = read_fd_max(out, MAX_OUTPUT, ret_out, &out_len);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (r < 0)
                return r;
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return 0;
}

/* Reports a plugin failure: its error object on stderr plus a summary line. Always returns -EIO. */
static int report_failure(const char *type, const char *command, const char *out, int status) {
        json_error_t jerr;
        json_t *err = json_loads(out ? out : "", 0, &jerr);
        long long code = -1;
        if (err && json_is_object(err) && json_is_integer(json_object_get(err, "code")))
                code = json_integer_value(json_object_get(err, "code"));
        fprintf(stderr, "%s\n", out && *out ? out : "(no output)");
        fprintf(stderr, "cnichain: %s %s failed: code %lld (exit status %d)\n", type, command, code, status);
        json_decref(err);
        return -EIO;
}

/* Builds the config sent to one plugin. */
static json_t *plugin_conf(const Opts *o, const Chain *c, json_t *plugin, json_t *prev, json_t *caps) {
        json_t *conf = json_deep_copy(plugin);
        json_object_set_new(conf, "name", json_string(c->name));
        json_object_set_new(conf, "cniVersion", json_string(c->version));
        if (prev)
                json_object_set(conf, "prevResult", prev);
        json_t *declared = json_object_get(plugin, "capabilities");
        if (json_is_object(declared) && caps) {
                json_t *rt = json_object();
                const char *k;
                json_t *v;
                json_object_foreach(declared, k, v) {
                        json_t *val = json_object_get(caps, k);
                        if (json_is_true(v) && val)
                                json_object_set(rt, k, val);
                }
                if (json_object_size(rt) > 0)
                        json_object_set_new(conf, "runtimeConfig", rt);
                else
                        json_decref(rt);
        }
        (void) o;
        return conf;
}

static int cache_path(const Opts *o, const char *net, const char *cid, const char *ifname, char ret[PATH_MAX]) {
        if (snprintf(ret, PATH_MAX, "%s/results/%s-%s-%s", o->cache_dir, net, cid, ifname) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

static json_t *cache_load(const Opts *o, const Chain *c) {
        char p[PATH_MAX];
        if (cache_path(o, c->name, o->cid, o->ifname, p) < 0)
                return NULL;
        json_error_t jerr;
        return json_load_file(p, 0, &jerr);
}

static int cache_store(const Opts *o, const Chain *c, json_t *result) {
        char p[PATH_MAX], dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/results", o->cache_dir) >= (int) sizeof dir)
                return -ENAMETOOLONG;
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        r = cache_path(o, c->name, o->cid, o->ifname, p);
        if (r < 0)
                return r;
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "kind", "cniCacheV1", "containerId", o->cid,
                              "ifName", o->ifname, "networkName", c->name, "netns", o->netns, "cniArgs",
                              o->args ? o->args : "", "capabilityArgs", o->caps, "result", result);
        if (!e)
                return -ENOMEM;
        _cleanup_free_ char *s = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        if (!s)
                return -ENOMEM;
        return write_file_atomic(p, s, strlen(s), false);
}

static int cmd_add(const Opts *o, const Chain *c) {
        json_t *prev = NULL;
        size_t i;
        json_t *plugin;
        json_array_foreach(c->plugins, i, plugin) {
                const char *type = json_string_value(json_object_get(plugin, "type"));
                json_t *conf = plugin_conf(o, c, plugin, prev, o->caps);
                _cleanup_free_ char *in = json_dumps(conf, JSON_COMPACT);
                json_decref(conf);
                _cleanup_free_ char *out = NULL;
                int status = 0;
                int r = exec_plugin(o, type, "ADD", in, &out, &status);
                if (r < 0) {
                        json_decref(prev);
                        return r;
                }
                if (status != 0) {
                        json_decref(prev);
                        return report_failure(type, "ADD", out, status);
                }
                json_error_t jerr;
                json_t *res = json_loads(out, 0, &jerr);
                if (!res || !json_is_object(res)) {
                        fprintf(stderr, "cnichain: %s ADD: result is not a JSON object: %s\n", type, out);
                        json_decref(res);
                        json_decref(prev);
                        return -EBADMSG;
                }
                json_decref(prev);
                prev = res;
        }
        int r = cache_store(o, c, prev);
        if (r < 0)
                fprintf(stderr, "cnichain: writing cache: %s\n", strerror(-r));
        char *s = json_dumps(prev, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(prev);
        return r;
}

static int cmd_del(const Opts *o, const Chain *c) {
        json_t *cached = cache_load(o, c);
        json_t *prev = NULL, *caps = o->caps;
        if (cached) {
                prev = json_object_get(cached, "result");
                json_t *cc = json_object_get(cached, "capabilityArgs");
                if (json_object_size(o->caps) == 0 && json_is_object(cc))
                        caps = cc;
        }
        /* Like libcni: DEL gets prevResult only from 0.4.0 on. */
        if (version_cmp(c->version, "0.4.0") < 0)
                prev = NULL;
        int ret = 0;
        for (size_t i = json_array_size(c->plugins); i-- > 0;) {
                json_t *plugin = json_array_get(c->plugins, i);
                const char *type = json_string_value(json_object_get(plugin, "type"));
                json_t *conf = plugin_conf(o, c, plugin, prev, caps);
                _cleanup_free_ char *in = json_dumps(conf, JSON_COMPACT);
                json_decref(conf);
                _cleanup_free_ char *out = NULL;
                int status = 0;
                int r = exec_plugin(o, type, "DEL", in, &out, &status);
                if (r < 0) {
                        ret = r;
                        break;
                }
                if (status != 0) {
                        ret = report_failure(type, "DEL", out, status);
                        break;
                }
        }
        if (ret >= 0) {
                char p[PATH_MAX];
                if (cache_path(o, c->name, o->cid, o->ifname, p) >= 0)
                        (void) unlink(p);
        }
        json_decref(cached);
        return ret;
}

static int cmd_check(const Opts *o, const Chain *c) {
        if (c->disable_check) {
                fprintf(stderr, "cnichain: CHECK disabled by the config list\n");
                return 0;
        }
        json_t *cached = cache_load(o, c);
        json_t *prev = cached ? json_object_get(cached, "result") : NULL;
        if (!prev) {
                fprintf(stderr, "cnichain: CHECK: no cached result for %s/%s/%s\n", c->name, o->cid, o->ifname);
                json_decref(cached);
                return -ENOENT;
        }
        json_t *caps = o->caps;
        json_t *cc = json_object_get(cached, "capabilityArgs");
        if (json_object_size(o->caps) == 0 && json_is_object(cc))
                caps = cc;
        int ret = 0;
        size_t i;
        json_t *plugin;
        json_array_foreach(c->plugins, i, plugin) {
                const char *type = json_string_value(json_object_get(plugin, "type"));
                json_t *conf = plugin_conf(o, c, plugin, prev, caps);
                _cleanup_free_ char *in = json_dumps(conf, JSON_COMPACT);
                json_decref(conf);
                _cleanup_free_ char *out = NULL;
                int status = 0;
                int r = exec_plugin(o, type, "CHECK", in, &out, &status);
                if (r < 0) {
                        ret = r;
                        break;
                }
                if (status != 0) {
                        ret = report_failure(type, "CHECK", out, status);
                        break;
                }
        }
        json_decref(cached);
        return ret;
}

/* VERSION reply of one plugin (NULL on failure, reported). */
static json_t *plugin_version(const Opts *o, const Chain *c, const char *type) {
        _cleanup_free_ char *in = NULL;
        if (asprintf(&in, "{\"cniVersion\":\"%s\"}", c->version) < 0)
                return NULL;
        _cleanup_free_ char *out = NULL;
        int status = 0;
        if (exec_plugin(o, type, "VERSION", in, &out, &status) < 0)
                return NULL;
        if (status != 0) {
                (void) report_failure(type, "VERSION", out, status);
                return NULL;
        }
        json_error_t jerr;
        json_t *v = json_loads(out, 0, &jerr);
        if (!v)
                fprintf(stderr, "cnichain: %s VERSION: not JSON: %s\n", type, out);
        return v;
}

static bool supports(json_t *vreply, const char *want) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(vreply, "supportedVersions"), i, v)
                if (streq_ptr(json_string_value(v), want))
                        return true;
        return false;
}

static int cmd_version(const Opts *o, const Chain *c) {
        json_t *arr = json_array();
        int ret = 0;
        size_t i;
        json_t *plugin;
        json_array_foreach(c->plugins, i, plugin) {
                const char *type = json_string_value(json_object_get(plugin, "type"));
                json_t *v = plugin_version(o, c, type);
                if (!v) {
                        ret = -EIO;
                        v = json_null();
                }
                json_array_append_new(arr, json_pack("{s:s, s:o}", "type", type, "reply", v));
        }
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(arr);
        return ret;
}

/* cni.dev/valid-attachments from --valid or from the cache entries of this network. */
static json_t *valid_attachments(const Opts *o, const Chain *c) {
        json_t *arr = json_array();
        if (o->valid) {
                _cleanup_free_ char *dup = strdup(o->valid);
                char *save = NULL;
                for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        char *colon = strchr(t, ':');
                        if (!colon) {
                                fprintf(stderr, "cnichain: --valid: '%s' is not CID:IFNAME\n", t);
                                exit(2);
                        }
                        *colon = 0;
                        json_array_append_new(arr, json_pack("{s:s, s:s}", "containerID", t, "ifname", colon + 1));
                }
                return arr;
        }
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/results", o->cache_dir);
        DIR *d = opendir(dir);
        if (!d)
                return arr;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
                        continue;
                char p[PATH_MAX];
                if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int) sizeof p)
                        continue;
                json_error_t jerr;
                json_t *e = json_load_file(p, 0, &jerr);
                if (e && streq_ptr(json_string_value(json_object_get(e, "networkName")), c->name))
                        json_array_append_new(arr,
                                              json_pack("{s:O, s:O}", "containerID", json_object_get(e, "containerId"),
                                                        "ifname", json_object_get(e, "ifName")));
                json_decref(e);
        }
        closedir(d);
        return arr;
}

static int cmd_status_gc(const Opts *o, const Chain *c, bool gc) {
        const char *command = gc ? "GC" : "STATUS";
        if (version_cmp(c->version, "1.1.0") < 0) {
                fprintf(stderr, "cnichain: %s skipped: config list version %s < 1.1.0\n", command, c->version);
                return 0;
        }
        if (gc && c->disable_gc) {
                fprintf(stderr, "cnichain: GC disabled by the config list\n");
                return 0;
        }
        json_t *valid = gc ? valid_attachments(o, c) : NULL;
        int ret = 0;
        size_t i;
        json_t *plugin;
        json_array_foreach(c->plugins, i, plugin) {
                const char *type = json_string_value(json_object_get(plugin, "type"));
                json_t *v = plugin_version(o, c, type);
                bool ok = v && supports(v, "1.1.0");
                json_decref(v);
                if (!ok) {
                        fprintf(stderr, "cnichain: %s: skipping '%s' (does not support 1.1.0)\n", command, type);
                        continue;
                }
                json_t *conf = plugin_conf(o, c, plugin, NULL, NULL);
                if (gc)
                        json_object_set(conf, "cni.dev/valid-attachments", valid);
                _cleanup_free_ char *in = json_dumps(conf, JSON_COMPACT);
                json_decref(conf);
                _cleanup_free_ char *out = NULL;
                int status = 0;
                int r = exec_plugin(o, type, command, in, &out, &status);
                if (r < 0) {
                        ret = r;
                        break;
                }
                if (status != 0) {
                        ret = report_failure(type, command, out, status);
                        break;
                }
        }
        json_decref(valid);
        return ret;
}

int main(int argc, char **argv) {
        Opts o = { .cache_dir = "/var/lib/cni", .caps = json_object() };
        const char *pos[5];
        int npos = 0;
        const char *env_path = getenv("CNI_PATH");
        o.path = env_path && *env_path ? env_path : "/usr/lib/cni";

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (a[0] == '-' && a[1] == '-') {
                        if (i + 1 >= argc)
                                die_usage("option needs a value");
                        const char *v = argv[++i];
                        if (streq(a, "--args"))
                                o.args = v;
                        else if (streq(a, "--cache-dir"))
                                o.cache_dir = v;
                        else if (streq(a, "--path"))
                                o.path = v;
                        else if (streq(a, "--valid"))
                                o.valid = v;
                        else if (streq(a, "--cap")) {
                                const char *eq = strchr(v, '=');
                                if (!eq || eq == v)
                                        die_usage("--cap needs NAME=JSON");
                                _cleanup_free_ char *name = strndup(v, (size_t) (eq - v));
                                json_error_t jerr;
                                json_t *val = json_loads(eq + 1, JSON_DECODE_ANY, &jerr);
                                if (!val) {
                                        fprintf(stderr, "cnichain: --cap %s: invalid JSON: %s\n", name, jerr.text);
                                        return 2;
                                }
                                json_object_set_new(o.caps, name, val);
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
        o.cmd = pos[0];
        o.conflist = pos[1];
        bool attach = streq(o.cmd, "add") || streq(o.cmd, "del") || streq(o.cmd, "check");
        if (attach && npos != 5)
                die_usage("add/del/check need CONFLIST CONTAINERID NETNS IFNAME");
        o.cid = npos > 2 ? pos[2] : "";
        o.netns = npos > 3 ? pos[3] : "";
        o.ifname = npos > 4 ? pos[4] : "";

        Chain c = { 0 };
        int r = load_chain(o.conflist, &c);
        if (r < 0)
                return 2;

        if (streq(o.cmd, "add"))
                r = cmd_add(&o, &c);
        else if (streq(o.cmd, "del"))
                r = cmd_del(&o, &c);
        else if (streq(o.cmd, "check"))
                r = cmd_check(&o, &c);
        else if (streq(o.cmd, "status"))
                r = cmd_status_gc(&o, &c, false);
        else if (streq(o.cmd, "gc"))
                r = cmd_status_gc(&o, &c, true);
        else if (streq(o.cmd, "version"))
                r = cmd_version(&o, &c);
        else
                die_usage("unknown command");

        json_decref(c.own);
        json_decref(c.root);
        json_decref(o.caps);
        return r < 0 ? 1 : 0;
}
