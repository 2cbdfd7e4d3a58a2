/* SPDX-License-Identifier: Apache-2.0 */
/* metadata: name, namespace, uid, labels, annotations (a VirtualMachine's own and its template's). */
#include <ctype.h>

#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

bool vmi_valid_k8s_name(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        if (!isalnum((unsigned char) s[0]) || !isalnum((unsigned char) s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];
                if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.'))
                        return false;
        }
        return !strstr(s, "..");
}

static int parse_string_map(VmiCtx *c, json_t *obj, const char *path, LaunchKV **ret, size_t *ret_n) {
        if (vmi_require_object(c, obj, path) < 0)
                return -EINVAL;
        size_t n = json_object_size(obj);
        LaunchKV *kv = calloc(n ? n : 1, sizeof *kv);
        if (!kv)
                return vmi_nomem(c);
        size_t i = 0;
        const char *key;
        json_t *val;
        json_object_foreach (obj, key, val) {
                if (!json_is_string(val)) {
                        launch_kv_free(kv, i);
                        return vmi_invalid(c, "%s: '%s' must be a string, got %s", path, key, json_type_name(val));
                }
                kv[i].key = strdup(key);
                kv[i].value = strdup(json_string_value(val));
                i++;
                if (!kv[i - 1].key || !kv[i - 1].value) {
                        launch_kv_free(kv, i);
                        return vmi_nomem(c);
                }
        }
        *ret = kv;
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------------ metadata */

int vmi_parse_metadata(VmiCtx *c, json_t *meta, const char *path, json_t *outer_meta) {
        static const Field fields[] = {
                { "name", FLD_OK },           { "namespace", FLD_OK },         { "uid", FLD_OK },
                { "labels", FLD_OK },         { "annotations", FLD_OK },       { "generateName", FLD_OK },
                { "resourceVersion", FLD_OK }, { "generation", FLD_OK },       { "creationTimestamp", FLD_OK },
                { "ownerReferences", FLD_OK }, { "finalizers", FLD_OK },       { "managedFields", FLD_OK },
                { "selfLink", FLD_OK },       { "deletionTimestamp", FLD_OK }, { "deletionGracePeriodSeconds", FLD_OK },
                {},
        };
        LaunchVmi *v = c->v;
        int r;
        if (meta) {
                if ((r = vmi_require_object(c, meta, path)) < 0 || (r = vmi_check_fields(c, meta, path, fields)) < 0)
                        return r;
                if ((r = vmi_get_str(c, meta, path, "name", false, &v->name)) < 0 ||
                    (r = vmi_get_str(c, meta, path, "namespace", false, &v->namespace)) < 0 ||
                    (r = vmi_get_str(c, meta, path, "uid", false, &v->uid)) < 0)
                        return r;
                json_t *o = json_object_get(meta, "labels");
                char sub[128];
                if (o && !json_is_null(o)) {
                        snprintf(sub, sizeof sub, "%s.labels", path);
                        if ((r = parse_string_map(c, o, sub, &v->labels, &v->n_labels)) < 0)
                                return r;
                }
                o = json_object_get(meta, "annotations");
                if (o && !json_is_null(o)) {
                        snprintf(sub, sizeof sub, "%s.annotations", path);
                        if ((r = parse_string_map(c, o, sub, &v->annotations, &v->n_annotations)) < 0)
                                return r;
                        for (size_t i = 0; i < v->n_annotations; i++)
                                if (streq(v->annotations[i].key, "k8s.v1.cni.cncf.io/networks") &&
                                    (r = vmi_dup_opt(c, v->annotations[i].value, &v->networks_annotation)) < 0)
                                        return r;
                }
        }
        /* a VirtualMachine's own name/namespace/uid name the VMI it creates */
        if (outer_meta) {
                if ((r = vmi_check_fields(c, outer_meta, "metadata", fields)) < 0)
                        return r;
                const char *s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "name", true, &s, c->e)) < 0 ||
                    (r = vmi_dup_opt(c, s, &v->name)) < 0)
                        return r;
                s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "namespace", false, &s, c->e)) < 0 ||
                    (r = vmi_dup_opt(c, s, &v->namespace)) < 0)
                        return r;
                s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "uid", false, &s, c->e)) < 0 ||
                    (!v->uid && (r = vmi_dup_opt(c, s, &v->uid)) < 0))
                        return r;
        }
        if (!v->name)
                return vmi_invalid(c, "%s: 'name' is required", path);
        if (!vmi_valid_k8s_name(v->name, 253))
                return vmi_invalid(c, "%s: 'name' must be a lowercase DNS-1123 name, got '%s'", path, v->name);
        if (!v->namespace && (r = vmi_dup_opt(c, "default", &v->namespace)) < 0)
                return r;
        if (!vmi_valid_k8s_name(v->namespace, 63) || strchr(v->namespace, '.'))
                return vmi_invalid(c, "%s: 'namespace' must be a lowercase DNS-1123 label, got '%s'", path, v->namespace);
        return 0;
}

void launch_kv_free(LaunchKV *kv, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}
