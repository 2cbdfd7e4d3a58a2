/* SPDX-License-Identifier: Apache-2.0 */
/* auxiliaryCNIChainName (Multus's docs/configuration.md): one more CNI chain after every network of the pod,
 * made of the .conf plugin files in <directory of clusterNetwork>/<name>, lexically, as libcni's
 * NetworkPluginConfsFromFiles loads a "subdirectory chain". Multus puts its passthru plugin first, which only
 * returns an empty result so that the chained plugins (tuning, ...) get a prevResult; kvnet-multus gives them
 * that result itself (mc_aux_seed_result). */
#include <ctype.h>
#include <dirent.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

/* libcni's rule for a network name that is also a directory: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
bool mc_aux_chain_name_valid(const char *s) {
        if (!s || !isalnum((unsigned char) *s))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("_.-", *s))
                        return false;
        return true;
}

/* Go's filepath.Dir of a path that holds a '/': everything before the last one, trailing slashes dropped. */
static int dir_of(const char *path, char **ret) {
        const char *slash = strrchr(path, '/');
        size_t n = (size_t) (slash - path);
        while (n > 0 && path[n - 1] == '/')
                n--;
        char *d = n ? strndup(path, n) : strdup("/");
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

/* libcni's ConfFiles(dir, [".conf"]): the names whose extension is ".conf", directories left out */
static int conf_filter(const struct dirent *de) {
        const char *ext = strrchr(de->d_name, '.');
        return ext && streq(ext, ".conf") && de->d_type != DT_DIR;
}

/* One plugin file: a JSON object with a non-empty "type" (libcni's NetworkPluginConfFromBytes). */
static int load_plugin(const char *dir, const char *file, json_t *plugins, KvErr *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ json_t *o = NULL;
        size_t len = 0;
        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        int r = read_file_max(path, MC_CONFIG_MAX, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "auxiliaryCNIChainName: cannot read '%s'", path);
        if (!(o = json_loadb(text, len, 0, NULL)) || !json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "auxiliaryCNIChainName: '%s' is not a JSON object",
                                 path);
        json_t *type = json_object_get(o, "type");
        if (!json_is_string(type) || !*json_string_value(type))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "auxiliaryCNIChainName: '%s' has no 'type'", path);
        return json_array_append(plugins, o) == 0 ? 0 : -ENOMEM;
}

int mc_aux_conflist(const char *cluster_network, const char *name, const char *version, char **ret, KvErr *e) {
        _cleanup_free_ char *base = NULL, *dir = NULL;
        int r;
        *ret = NULL;
        if (!cluster_network || !strchr(cluster_network, '/'))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'auxiliaryCNIChainName' needs 'clusterNetwork' to be a path (the chain is in a "
                                 "subdirectory of its directory), got '%s'",
                                 cluster_network ? cluster_network : "");
        if (!mc_aux_chain_name_valid(name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: 'auxiliaryCNIChainName' '%s' is not a name",
                                 name ? name : "");
        if ((r = dir_of(cluster_network, &base)) < 0 || asprintf(&dir, "%s/%s", base, name) < 0)
                return r < 0 ? r : -ENOMEM;
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, conf_filter, alphasort); /* Go's os.ReadDir order, in the C locale */
        if (n < 0 && errno != ENOENT)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, negative_errno(), "auxiliaryCNIChainName: directory '%s'",
                                       dir);
        if (n <= 0) /* no directory, or no plugin file in it: no chain, as in Multus */
                return 0;
        _cleanup_json_ json_t *list = json_pack("{s:s,s:s,s:[]}", "cniVersion", version, "name", name, "plugins");
        r = list ? 0 : -ENOMEM;
        for (int i = 0; i < n; i++) {
                if (r >= 0)
                        r = load_plugin(dir, ents[i]->d_name, json_object_get(list, "plugins"), e);
                free(ents[i]);
        }
        free(ents);
        if (r < 0)
                return r;
        if (!(*ret = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                return -ENOMEM;
        return 1;
}

int mc_aux_seed_result(const char *version, char **ret) {
        /* what passthru prints: an empty result (its empty lists left out, as Go's omitempty does) */
        _cleanup_json_ json_t *o = json_pack("{s:s,s:{}}", "cniVersion", version, "dns");
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
