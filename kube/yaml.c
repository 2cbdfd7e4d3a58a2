/* SPDX-License-Identifier: Apache-2.0 */
/* A YAML document as a JSON tree, for kubeconfigs (JSON is YAML's flow style, so both parse here). Every
 * scalar stays a string: the reader of a field decides what "true" means there. */
#include <yaml.h>

#include "common/json-util.h"
#include "kube/kube-priv.h"

#define YAML_DEPTH_MAX 64

static json_t *node_to_json(yaml_document_t *doc, yaml_node_t *n, unsigned depth) {
        if (!n || depth > YAML_DEPTH_MAX)
                return NULL;
        switch (n->type) {
        case YAML_SCALAR_NODE:
                if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                    (n->data.scalar.length == 0 || streq((char *) n->data.scalar.value, "~") ||
                     streq((char *) n->data.scalar.value, "null")))
                        return json_null();
                return json_stringn((const char *) n->data.scalar.value, n->data.scalar.length);
        case YAML_SEQUENCE_NODE: {
                json_t *a = json_array();
                for (yaml_node_item_t *i = n->data.sequence.items.start; a && i < n->data.sequence.items.top; i++) {
                        json_t *v = node_to_json(doc, yaml_document_get_node(doc, *i), depth + 1);
                        if (!v || json_array_append_new(a, v) < 0) {
                                json_decref(a);
                                return NULL;
                        }
                }
                return a;
        }
        case YAML_MAPPING_NODE: {
                json_t *o = json_object();
                for (yaml_node_pair_t *p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top; p++) {
                        yaml_node_t *k = yaml_document_get_node(doc, p->key);
                        if (!k || k->type != YAML_SCALAR_NODE) {
                                json_decref(o);
                                return NULL;
                        }
                        json_t *v = node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1);
                        if (!v || json_object_set_new(o, (const char *) k->data.scalar.value, v) < 0) {
                                json_decref(o);
                                return NULL;
                        }
                }
                return o;
        }
        default:
                return NULL;
        }
}

int kube_yaml_parse(const char *text, size_t len, const char *what, json_t **ret, KvErr *e) {
        yaml_parser_t parser;
        yaml_document_t doc;
        if (!yaml_parser_initialize(&parser))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "%s: out of memory", what);
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                int r = kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: not YAML or JSON: %s at line %zu", what,
                                  parser.problem ? parser.problem : "parse error", parser.problem_mark.line + 1);
                yaml_parser_delete(&parser);
                return r;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        json_t *v = root ? node_to_json(&doc, root, 0) : NULL;
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        if (!json_is_object(v)) {
                json_decref(v);
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: %s", what,
                                 root ? "the document is not a mapping (or nests too deep)" : "the document is empty");
        }
        *ret = v;
        return 0;
}
