/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/launchcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json-util.h"
#include "controller/store.h"
#include "launcher/launcher.h"

const char *ctl_error_field(const char *msg, char *buf, size_t n) {
        buf[0] = '\0';
        const char *colon = strstr(msg, ": ");
        /* a field of the object: "spec...", "metadata..." (not "input", "create") */
        if (!colon || (size_t) (colon - msg) >= n || (strncmp(msg, "spec", 4) != 0 && strncmp(msg, "metadata", 8) != 0))
                return buf;
        /* a path has no blanks: "spec.domain.devices.interfaces[0].slirp" */
        for (const char *p = msg; p < colon; p++)
                if (*p == ' ' || *p == '\'')
                        return buf;
        snprintf(buf, n, "%.*s", (int) (colon - msg), msg);
        /* "PATH: 'key' must be ..." / "PATH: 'key' is required": the key is the field */
        const char *q = colon + 2, *end = q[0] == '\'' ? strchr(q + 1, '\'') : NULL;
        if (end && (strncmp(end, "' must", 6) == 0 || strncmp(end, "' is required", 13) == 0)) {
                size_t len = strlen(buf);
                snprintf(buf + len, n - len, ".%.*s", (int) (end - q - 1), q + 1);
        }
        return buf;
}

int ctl_launcher_check(json_t *obj, const char *kind, const char *verb, KvErr *e) {
        /* the launcher reads a whole object: the one being stored, in the version it parses, with a name even
         * when the server is still to generate it */
        _cleanup_json_ json_t *o = json_copy(obj), *md = json_copy(json_object_get(obj, "metadata"));
        if (!o || !md)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "%s: out of memory", verb);
        /* the name is the store's to check (and to generate) */
        const char *name = json_string_value(json_object_get(md, "name"));
        KvErr ne = {};
        if (!name || ctl_check_name("metadata.name", name, false, &ne) < 0)
                json_object_set_new(md, "name", json_string("generated"));
        json_object_set(o, "metadata", md);
        json_object_set_new(o, "apiVersion", json_string("kubevirt.io/v1"));
        json_object_set_new(o, "kind", json_string(kind));
        json_object_del(o, "status");

        static const LaunchOptions opts = { .parse_only = true };
        KvErr pe = {};
        LaunchVmi *v = NULL;
        int r = launch_vmi_parse_json(o, &opts, &v, &pe);
        launch_vmi_free(v);
        if (r >= 0)
                return 0;
        char field[256];
        kverr_set(e, KV_ERR_INVALID_CONFIG, r == -ENOMEM ? r : -EINVAL, "%s: %s", verb, pe.msg);
        snprintf(e->details, sizeof e->details, "%s", ctl_error_field(pe.msg, field, sizeof field));
        return r == -ENOMEM ? r : -EINVAL;
}
