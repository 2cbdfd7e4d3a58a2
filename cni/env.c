/* SPDX-License-Identifier: Apache-2.0 */
/* CNI environment: CNI_COMMAND and friends, CNI_ARGS, name validators, versions. */
#include <ctype.h>
#include <strings.h>

#include "cni/cni.h"

const char *const cni_supported_versions[] = { "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL };

int cni_version_index(const char *version) {
        if (!version)
                return -1;
        for (int i = 0; cni_supported_versions[i]; i++)
                if (streq(cni_supported_versions[i], version))
                        return i;
        return -1;
}

static const char *version_part(const char *s, long *ret) {
        long v = 0;
        while (*s >= '0' && *s <= '9') {
                if (v < 1000000)
                        v = v * 10 + (*s - '0');
                s++;
        }
        *ret = v;
        return *s == '.' ? s + 1 : s;
}

int cni_version_cmp(const char *a, const char *b) {
        for (int i = 0; i < 3; i++) {
                long x, y;
                a = version_part(a, &x);
                b = version_part(b, &y);
                if (x != y)
                        return x < y ? -1 : 1;
        }
        return 0;
}

static const char *const command_names[_CNI_CMD_MAX] = {
        [CNI_CMD_ADD] = "ADD",       [CNI_CMD_DEL] = "DEL", [CNI_CMD_CHECK] = "CHECK",
        [CNI_CMD_STATUS] = "STATUS", [CNI_CMD_GC] = "GC",   [CNI_CMD_VERSION] = "VERSION",
};

const char *cni_command_to_string(CniCommand c) {
        return c >= 0 && c < _CNI_CMD_MAX ? command_names[c] : "?";
}

int cni_command_from_string(const char *s, CniCommand *ret) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _CNI_CMD_MAX; i++)
                if (streq(command_names[i], s)) {
                        *ret = (CniCommand) i;
                        return 0;
                }
        return -EINVAL;
}

const char *cni_getenv(char *const *envp, const char *name) {
        if (!envp || !name)
                return NULL;
        size_t n = strlen(name);
        for (char *const *p = envp; *p; p++)
                if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
                        return *p + n + 1;
        return NULL;
}

bool cni_container_id_valid(const char *s) {
        if (!s || !isalnum((unsigned char) s[0]))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_' && *c != '.' && *c != '-')
                        return false;
        return true;
}

bool cni_ifname_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > CNI_IFNAME_MAX || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *c = s; *c; c++)
                if (*c == '/' || *c == ':' || isspace((unsigned char) *c) || !isprint((unsigned char) *c))
                        return false;
        return true;
}

bool cni_dns_label_valid(const char *s) {
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                        return false;
        return true;
}

int cni_env_parse(char *const *envp, CniEnv *ret, KvErr *e) {
        CniEnv env = {};
        const char *cmd = cni_getenv(envp, "CNI_COMMAND");
        if (!cmd || !*cmd)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "environment: 'CNI_COMMAND' is required");
        if (cni_command_from_string(cmd, &env.command) < 0)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "environment: 'CNI_COMMAND' must be ADD, DEL, CHECK, STATUS, GC or VERSION, got '%s'",
                                 cmd);
        env.debug = cni_getenv(envp, "KVNET_DEBUG") != NULL;
        env.netd_socket = cni_getenv(envp, "KVNET_NETD_SOCKET");
        if (env.netd_socket && !*env.netd_socket)
                env.netd_socket = NULL;
        env.path = cni_getenv(envp, "CNI_PATH");

        /* VERSION, STATUS and GC do not concern a container: runtimes may send junk there. */
        if (env.command == CNI_CMD_VERSION || env.command == CNI_CMD_STATUS || env.command == CNI_CMD_GC) {
                *ret = env;
                return 0;
        }

        env.container_id = cni_getenv(envp, "CNI_CONTAINERID");
        if (!env.container_id)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "environment: 'CNI_CONTAINERID' is required for %s",
                                 cmd);
        if (!cni_container_id_valid(env.container_id))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "environment: 'CNI_CONTAINERID' must be non-empty, start with a letter or digit and "
                                 "contain only [A-Za-z0-9_.-], got '%s'",
                                 env.container_id);

        env.netns = cni_getenv(envp, "CNI_NETNS");
        if (env.netns && !*env.netns)
                env.netns = NULL;
        if (!env.netns && env.command != CNI_CMD_DEL)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "environment: 'CNI_NETNS' is required for %s", cmd);

        env.ifname = cni_getenv(envp, "CNI_IFNAME");
        if (!env.ifname)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "environment: 'CNI_IFNAME' is required for %s", cmd);
        if (!cni_ifname_valid(env.ifname))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "environment: 'CNI_IFNAME' must be 1..15 characters, not '.' or '..', without '/', "
                                 "':' or whitespace, got '%s'",
                                 env.ifname);

        env.args = cni_getenv(envp, "CNI_ARGS");
        *ret = env;
        return 0;
}

void cni_args_done(CniArgs *a) {
        if (!a)
                return;
        free(a->k8s_pod_namespace);
        free(a->k8s_pod_name);
        free(a->k8s_pod_infra_container_id);
        free(a->k8s_pod_uid);
        free(a->vm_name);
        free(a->vm_namespace);
        free(a->vm_interface);
        free(a->vm_binding);
        free(a->ip);
        free(a->mac);
        *a = (CniArgs) {};
}

static bool truthy(const char *v) {
        return strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
}

int cni_args_parse(const char *s, CniArgs *ret, KvErr *e) {
        _cleanup_(cni_args_done) CniArgs a = {};
        if (!s || !*s) {
                *ret = a;
                return 0;
        }
        _cleanup_free_ char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        /* Two passes: IgnoreUnknown may appear after the unknown key. */
        for (char *save = NULL, *p = strtok_r(copy, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
                char *eq = strchr(p, '=');
                if (!eq)
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                         "CNI_ARGS: '%s' is not a KEY=VALUE pair (in '%s')", p, s);
                if (eq == p)
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "CNI_ARGS: empty key in '%s'", p);
                if (strncmp(p, "IgnoreUnknown=", 14) == 0)
                        a.ignore_unknown = truthy(eq + 1);
        }

        strcpy(copy, s);
        for (char *save = NULL, *p = strtok_r(copy, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
                char *eq = strchr(p, '=');
                *eq = '\0';
                const char *key = p, *val = eq + 1;
                char **slot = NULL;
                if (streq(key, "IgnoreUnknown"))
                        continue;
                else if (streq(key, "K8S_POD_NAMESPACE"))
                        slot = &a.k8s_pod_namespace;
                else if (streq(key, "K8S_POD_NAME"))
                        slot = &a.k8s_pod_name;
                else if (streq(key, "K8S_POD_INFRA_CONTAINER_ID"))
                        slot = &a.k8s_pod_infra_container_id;
                else if (streq(key, "K8S_POD_UID"))
                        slot = &a.k8s_pod_uid;
                else if (streq(key, "KVNET_VM_NAME"))
                        slot = &a.vm_name;
                else if (streq(key, "KVNET_VM_NAMESPACE"))
                        slot = &a.vm_namespace;
                else if (streq(key, "KVNET_VM_INTERFACE"))
                        slot = &a.vm_interface;
                else if (streq(key, "KVNET_VM_BINDING"))
                        slot = &a.vm_binding;
                else if (streq(key, "IP"))
                        slot = &a.ip;
                else if (streq(key, "MAC"))
                        slot = &a.mac;
                else if (a.ignore_unknown)
                        continue;
                else
                        return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                         "CNI_ARGS: unknown key '%s' (value '%s'); set IgnoreUnknown=1 to ignore it",
                                         key, val);
                char *d = strdup(val);
                if (!d)
                        return -ENOMEM;
                free(*slot);
                *slot = d;
        }
        *ret = a;
        a = (CniArgs) {};
        return 0;
}
