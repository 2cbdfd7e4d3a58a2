/* SPDX-License-Identifier: Apache-2.0 */
/* NodeErr: what failed (kind, plugin, command) and why (the plugin's error object, or our message). */
#include <stdarg.h>

#include <jansson.h>

#include "common/json-util.h"
#include "node/node-priv.h"

static const char *const err_kind_table[_NODE_ERR_KIND_MAX] = {
        [NODE_ERR_NONE] = "none",
        [NODE_ERR_CONFIG] = "config",
        [NODE_ERR_ARGS] = "args",
        [NODE_ERR_PLUGIN_NOT_FOUND] = "plugin-not-found",
        [NODE_ERR_EXEC] = "exec",
        [NODE_ERR_PLUGIN] = "plugin",
        [NODE_ERR_RESULT] = "result",
        [NODE_ERR_CACHE] = "cache",
        [NODE_ERR_SANDBOX] = "sandbox",
        [NODE_ERR_LIBVIRTD] = "libvirtd",
        [NODE_ERR_LAUNCHER] = "launcher",
        [NODE_ERR_RECORD] = "record",
        [NODE_ERR_PROXY] = "proxy",
        [NODE_ERR_GATE] = "gate",
};

const char *node_err_kind_to_string(NodeErrKind k) {
        if ((unsigned) k >= _NODE_ERR_KIND_MAX)
                return NULL;
        return err_kind_table[k];
}

int node_json_object(const char *text, size_t len, NodeErrKind kind, const char *what, json_t **ret, NodeErr *e) {
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, &jerr);
        if (!json_is_object(o))
                return node_err_set(e, kind, NULL, NULL, -EBADMSG, "%s: not a JSON object: %s", what,
                                    o ? json_type_name(o) : jerr.text);
        *ret = TAKE_PTR(o);
        return 0;
}

void node_err_done(NodeErr *e) {
        if (!e)
                return;
        free(e->output);
        *e = (NodeErr) { .code = -1 };
}

static void err_head(NodeErr *e, NodeErrKind kind, const char *plugin, const char *command) {
        e->kind = kind;
        snprintf(e->plugin, sizeof e->plugin, "%s", plugin ? plugin : "");
        snprintf(e->command, sizeof e->command, "%s", command ? command : "");
        e->code = -1;
        e->exit_status = 0;
        e->msg[0] = e->details[0] = '\0';
}

int node_err_set(NodeErr *e, NodeErrKind kind, const char *plugin, const char *command, int ret, const char *fmt, ...) {
        if (!e || e->kind != NODE_ERR_NONE)
                return ret;
        err_head(e, kind, plugin, command);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        if (ret < 0)
                snprintf(e->details, sizeof e->details, "%s", strerror(-ret));
        return ret;
}

int node_err_from_plugin(NodeErr *e, const char *plugin, const char *command, const char *output, int exit_status) {
        if (!e || e->kind != NODE_ERR_NONE)
                return -EPROTO;
        err_head(e, NODE_ERR_PLUGIN, plugin, command);
        e->exit_status = exit_status;
        free(e->output);
        e->output = strdup(output ? output : "");

        json_error_t jerr;
        _cleanup_json_ json_t *obj = output ? json_loads(output, 0, &jerr) : NULL;
        json_t *code = json_object_get(obj, "code");
        if (json_is_integer(code)) {
                e->code = json_integer_value(code);
                snprintf(e->msg, sizeof e->msg, "%s", json_string_value(json_object_get(obj, "msg")) ?: "");
                snprintf(e->details, sizeof e->details, "%s",
                         json_string_value(json_object_get(obj, "details")) ?: "");
        } else
                snprintf(e->msg, sizeof e->msg, "%s %s exited with status %d without an error object", plugin,
                         command, exit_status);
        return -EPROTO;
}

const char *node_err_format(const NodeErr *e, int r, char *buf, size_t size) {
        if (e->kind != NODE_ERR_NONE)
                snprintf(buf, size, "%s%s%s%s%s (%s)", e->msg, e->details[0] ? ": " : "", e->details,
                         e->output && *e->output ? "; plugin output: " : "", e->output && *e->output ? e->output : "",
                         node_err_kind_to_string(e->kind));
        else
                snprintf(buf, size, "%s", strerror(-r));
        return buf;
}
