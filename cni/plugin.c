/* SPDX-License-Identifier: Apache-2.0 */
/* The whole plugin: env + stdin in, one call to netd, result or error object out. */
#include <ctype.h>
#include <stdarg.h>

#include "cni/cni.h"
#include "common/array.h"
#include "common/json-util.h"
#include "common/proto.h"

json_t *cni_error_to_json(const KvErr *e, const char *version) {
        json_t *o = json_pack("{s:s,s:i,s:s}", "cniVersion", version ? version : CNI_LATEST_VERSION, "code",
                              e->code ? e->code : KV_ERR_INTERNAL, "msg", e->msg[0] ? e->msg : "internal error");
        if (o && e->details[0])
                json_object_set_new(o, "details", json_string(e->details));
        return o;
}

/* Reads all of f, keeping at most max bytes; *ret_total is the full size (to report it). */
static int read_stream(FILE *f, size_t max, char **ret, size_t *ret_len, size_t *ret_total) {
        size_t cap = 4096, len = 0, total = 0; /* cap counts the NUL, as ARRAY_GROW does */
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        char chunk[4096];
        for (;;) {
                size_t n = fread(chunk, 1, sizeof chunk, f);
                if (n == 0) {
                        if (ferror(f))
                                return -EIO;
                        break;
                }
                total += n;
                size_t keep = len < max ? (n < max - len ? n : max - len) : 0;
                if (keep > 0) {
                        int r = ARRAY_GROW(buf, cap, len + keep + 1);
                        if (r < 0)
                                return r;
                        memcpy(buf + len, chunk, keep);
                        len += keep;
                }
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        *ret_total = total;
        return 0;
}

static bool blank(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!isspace((unsigned char) s[i]))
                        return false;
        return true;
}

/* The version errors should carry: the config's, when it is one we support. */
static const char *peek_version(const char *text, size_t len) {
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        json_t *v = json_object_get(o, "cniVersion");
        int idx = json_is_string(v) ? cni_version_index(json_string_value(v)) : -1;
        return idx >= 0 ? cni_supported_versions[idx] : CNI_LATEST_VERSION;
}

static int print_json(FILE *out, json_t *o) {
        if (!o)
                return -ENOMEM;
        if (json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 || fputc('\n', out) == EOF ||
            fflush(out) == EOF)
                return -EIO;
        return 0;
}

static int cmd_version(const char *text, size_t len, FILE *out, KvErr *e) {
        const char *v = CNI_LATEST_VERSION;
        _cleanup_json_ json_t *o = NULL;
        int r;
        if (!blank(text, len)) {
                if ((r = json_parse_object(text, len, CNI_MAX_STDIN, "stdin", &o, e)) < 0)
                        return r;
                if ((r = json_get_string(o, "stdin", "cniVersion", false, &v, e)) < 0)
                        return r;
        }
        _cleanup_json_ json_t *res = json_pack("{s:s,s:[]}", "cniVersion", v, "supportedVersions");
        if (!res)
                return -ENOMEM;
        json_t *arr = json_object_get(res, "supportedVersions");
        for (size_t i = 0; cni_supported_versions[i]; i++)
                json_array_append_new(arr, json_string(cni_supported_versions[i]));
        return print_json(out, res);
}

static void debug(const CniEnv *env, FILE *err, const char *fmt, ...) _printf_(3, 4);
static void debug(const CniEnv *env, FILE *err, const char *fmt, ...) {
        if (!env->debug || !err)
                return;
        va_list ap;
        va_start(ap, fmt);
        fputs("kvnet: ", err);
        vfprintf(err, fmt, ap);
        fputc('\n', err);
        va_end(ap);
}

static int run(FILE *in, FILE *out, FILE *err, char *const *envp, const char **version, KvErr *e) {
        CniEnv env = {};
        int r;

        /* The command first: without a valid one there is nothing to read stdin for. */
        CniCommand cmd;
        const char *cmds = cni_getenv(envp, "CNI_COMMAND");
        if (cni_command_from_string(cmds, &cmd) < 0)
                return cni_env_parse(envp, &env, e);

        _cleanup_free_ char *text = NULL;
        size_t len = 0, total = 0;
        if ((r = read_stream(in, CNI_MAX_STDIN, &text, &len, &total)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "stdin: read failed");
        if (total > CNI_MAX_STDIN)
                return kverr_set(e, KV_ERR_DECODE, -EMSGSIZE, "stdin: config is %zu bytes, limit is %d bytes", total,
                                 CNI_MAX_STDIN);
        *version = peek_version(text, len);

        if ((r = cni_env_parse(envp, &env, e)) < 0)
                return r;
        debug(&env, err, "%s container=%s ifname=%s netns=%s args=%s", cni_command_to_string(env.command),
              env.container_id ?: "-", env.ifname ?: "-", env.netns ?: "-", env.args ?: "-");

        if (env.command == CNI_CMD_VERSION) {
                *version = CNI_LATEST_VERSION;
                return cmd_version(text, len, out, e);
        }

        _cleanup_(cni_args_done) CniArgs args = {};
        if ((r = cni_args_parse(env.args, &args, e)) < 0)
                return r;

        _cleanup_(cni_netconf_freep) CniNetConf *conf = NULL;
        if ((r = cni_netconf_parse(text, len, &env, &args, &conf, e)) < 0)
                return r;
        *version = conf->cni_version;

        const char *op = NULL;
        _cleanup_json_ json_t *req = NULL;
        if ((r = cni_request_build(&env, conf, &op, &req)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "building the netd request failed");
        if (env.debug) {
                _cleanup_free_ char *s = json_dump_compact(req);
                debug(&env, err, "-> %s %s: %s", conf->socket, op, s ?: "?");
        }

        _cleanup_json_ json_t *result = NULL;
        r = proto_call_path(conf->socket, op, req, cni_request_timeout_ms(env.command), &result, e);
        if (r < 0) {
                if (env.command == CNI_CMD_STATUS && e->code == KV_ERR_TRY_AGAIN)
                        e->code = KV_ERR_NOT_AVAILABLE;
                return r;
        }
        if (env.command != CNI_CMD_ADD)
                return 0;

        _cleanup_(cni_result_freep) CniResult *res = NULL;
        KvErr pe = {};
        if ((r = cni_result_parse(result, "netd result", CNI_LATEST_VERSION, &res, &pe)) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "netd returned an invalid result: %s",
                                 pe.msg[0] ? pe.msg : strerror(-r));
        _cleanup_json_ json_t *o = NULL;
        if ((r = cni_result_to_json(res, conf->cni_version, &o)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "converting the result to %s failed", conf->cni_version);
        if ((r = print_json(out, o)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "stdout: writing the result failed");
        return 0;
}

int cni_run(FILE *in, FILE *out, FILE *err, char *const *envp) {
        KvErr e = {};
        const char *version = CNI_LATEST_VERSION;
        int r = run(in, out, err, envp, &version, &e);
        if (r >= 0)
                return 0;
        if (!kverr_is_set(&e))
                kverr_set_errno(&e, KV_ERR_INTERNAL, r, "internal error");
        if (err && cni_getenv(envp, "KVNET_DEBUG"))
                fprintf(err, "kvnet: error %d: %s%s%s\n", e.code, e.msg, e.details[0] ? ": " : "", e.details);
        _cleanup_json_ json_t *o = cni_error_to_json(&e, version);
        (void) print_json(out, o);
        return 1;
}
