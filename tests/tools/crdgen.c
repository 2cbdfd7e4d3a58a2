/* SPDX-License-Identifier: Apache-2.0 */
/* crdgen: writes kvnet's CustomResourceDefinitions (controller/crd.c) as YAML, one file per CRD named
 * <group>_<plural>.yaml, into a directory: `make deploy-crds` runs it into deploy/crds/, and
 * tests/integration/test-deploy.sh runs it into a temporary directory and compares (drift check).
 *
 *   crdgen DIR      write DIR/<group>_<plural>.yaml for every CRD; print each path
 *
 * The YAML is block style with sorted keys (as controller-gen writes CRDs); a string that could read as
 * anything but itself is double-quoted with JSON's escapes, which YAML reads the same. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "common/util.h"
#include "controller/crd.h"
#include "controller/store.h"

/* A plain scalar only when it has letters, digits and ._/- and no YAML reading but a string. */
static bool plain_ok(const char *s) {
        static const char *const special[] = { "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~" };
        if (!*s || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", *s) ||
            strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-") != strlen(s))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(special); i++)
                if (strcasecmp(s, special[i]) == 0)
                        return false;
        return true;
}

static int scalar(FILE *f, json_t *v) {
        if (json_is_string(v) && plain_ok(json_string_value(v)))
                return fputs(json_string_value(v), f) < 0 ? -EIO : 0;
        _cleanup_free_ char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        return fputs(text, f) < 0 ? -EIO : 0;
}

static bool is_block(json_t *v) {
        return (json_is_object(v) && json_object_size(v)) || (json_is_array(v) && json_array_size(v));
}

static int node(FILE *f, json_t *v, int indent);

static int cmp_key(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* An object's keys, sorted. */
static int keys_sorted(json_t *o, const char ***ret, size_t *ret_n) {
        size_t n = json_object_size(o), i = 0;
        const char **k = calloc(n ? n : 1, sizeof *k), *key;
        json_t *v;
        if (!k)
                return -ENOMEM;
        json_object_foreach(o, key, v) k[i++] = key;
        qsort(k, n, sizeof *k, cmp_key);
        *ret = k;
        *ret_n = n;
        return 0;
}

/* The entries of a non-empty object at indent; the first one's indentation is already written when first_inline. */
static int mapping(FILE *f, json_t *o, int indent, bool first_inline) {
        const char **keys = NULL;
        size_t n = 0;
        int r = keys_sorted(o, &keys, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_t *v = json_object_get(o, keys[i]);
                if (i > 0 || !first_inline)
                        fprintf(f, "%*s", indent, "");
                json_t *k = json_string(keys[i]);
                r = k ? scalar(f, k) : -ENOMEM;
                json_decref(k);
                if (r < 0)
                        break;
                if (is_block(v)) {
                        fputs(":\n", f);
                        r = node(f, v, json_is_array(v) ? indent : indent + 2);
                } else {
                        fputs(": ", f);
                        r = node(f, v, indent);
                }
        }
        free(keys);
        return r;
}

/* v at indent: a block collection on lines of its own, else a scalar (or {} / []) ending the line. */
static int node(FILE *f, json_t *v, int indent) {
        size_t i;
        json_t *x;
        int r = 0;
        if (json_is_object(v) && json_object_size(v))
                return mapping(f, v, indent, false);
        if (json_is_array(v) && json_array_size(v)) {
                json_array_foreach(v, i, x) {
                        fprintf(f, "%*s- ", indent, "");
                        if (json_is_object(x) && json_object_size(x))
                                r = mapping(f, x, indent + 2, true);
                        else if (is_block(x))
                                return -EINVAL; /* a list in a list: not in a CRD */
                        else
                                r = node(f, x, indent + 2);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (json_is_object(v))
                fputs("{}", f);
        else if (json_is_array(v))
                fputs("[]", f);
        else if ((r = scalar(f, v)) < 0)
                return r;
        return fputc('\n', f) == EOF ? -EIO : 0;
}

static int write_crd(const char *dir, json_t *crd) {
        const char *group = json_string_value(ctl_json_path(crd, "spec.group"));
        const char *plural = json_string_value(ctl_json_path(crd, "spec.names.plural"));
        char path[PATH_MAX];
        if (!group || !plural)
                return -EINVAL;
        snprintf(path, sizeof path, "%s/%s_%s.yaml", dir, group, plural);
        struct {
                char *buf;
                size_t len;
                FILE *f;
        } o = {};
        if (!(o.f = open_memstream(&o.buf, &o.len)))
                return -ENOMEM;
        fputs("# Generated by `make deploy-crds` (tests/tools/crdgen.c) from controller/schema.c, controller/table.c\n"
              "# and controller/store.c: edit those, not this file.\n"
              "---\n",
              o.f);
        int r = node(o.f, crd, 0);
        if (fclose(o.f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r >= 0)
                r = write_file_atomic(path, o.buf, o.len, false);
        free(o.buf);
        if (r < 0) {
                fprintf(stderr, "crdgen: %s: %s\n", path, strerror(-r));
                return r;
        }
        printf("%s\n", path);
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 2 || argv[1][0] == '-') {
                fprintf(stderr, "usage: crdgen DIR\n");
                return 2;
        }
        _cleanup_json_ json_t *crds = NULL;
        int r = ctl_crds(&crds);
        if (r < 0) {
                fprintf(stderr, "crdgen: %s\n", strerror(-r));
                return 1;
        }
        if ((r = mkdir_p(argv[1], 0755)) < 0) {
                fprintf(stderr, "crdgen: cannot create '%s': %s\n", argv[1], strerror(-r));
                return 1;
        }
        size_t i;
        json_t *crd;
        json_array_foreach(crds, i, crd) {
                if (write_crd(argv[1], crd) < 0)
                        return 1;
        }
        return 0;
}
