/* SPDX-License-Identifier: Apache-2.0 */
/* YAML (and JSON, a subset of it) -> jansson documents, through libyaml's event parser. */
#include <limits.h>
#include <yaml.h>

#include "common/json-util.h"
#include "launcher/launcher.h"

#define YAML_MAX_DEPTH 64

typedef struct YamlCtx {
        yaml_parser_t parser;
        const char *what;
        KvErr *e;
} YamlCtx;

static int yaml_fail(YamlCtx *c, const yaml_mark_t *m, const char *msg, const char *arg) {
        return kverr_set(c->e, KV_ERR_DECODE, -EBADMSG, "%s:%zu:%zu: %s%s%s", c->what, m->line + 1, m->column + 1, msg,
                         arg ? ": " : "", arg ? arg : "");
}

static int next_event(YamlCtx *c, yaml_event_t *ev) {
        if (!yaml_parser_parse(&c->parser, ev)) {
                const char *problem = c->parser.problem ? c->parser.problem : "syntax error";
                return kverr_set(c->e, KV_ERR_DECODE, -EBADMSG, "%s:%zu:%zu: YAML syntax error: %s%s%s", c->what,
                                 c->parser.problem_mark.line + 1, c->parser.problem_mark.column + 1, problem,
                                 c->parser.context ? " " : "", c->parser.context ? c->parser.context : "");
        }
        return 0;
}

static bool parse_int(const char *s, json_int_t *ret) {
        const char *p = s;
        bool neg = false;
        int base = 10;
        if (*p == '+' || *p == '-')
                neg = *p++ == '-';
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
                if (s != p)
                        return false; /* no sign with 0x / 0o in the core schema */
                base = p[1] == 'x' ? 16 : 8;
                p += 2;
        }
        if (!*p)
                return false;
        unsigned long long v = 0;
        for (; *p; p++) {
                int d;
                if (*p >= '0' && *p <= '9')
                        d = *p - '0';
                else if (base == 16 && *p >= 'a' && *p <= 'f')
                        d = *p - 'a' + 10;
                else if (base == 16 && *p >= 'A' && *p <= 'F')
                        d = *p - 'A' + 10;
                else
                        return false;
                if (d >= base)
                        return false;
                if (v > (ULLONG_MAX - (unsigned) d) / (unsigned) base)
                        return false;
                v = v * base + d;
        }
        if (neg ? v > (unsigned long long) LLONG_MAX + 1 : v > (unsigned long long) LLONG_MAX)
                return false;
        *ret = neg ? (json_int_t) (0 - v) : (json_int_t) v;
        return true;
}

static bool parse_float(const char *s, double *ret) {
        /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
        const char *p = s;
        bool digits = false;
        if (*p == '+' || *p == '-')
                p++;
        while (*p >= '0' && *p <= '9')
                p++, digits = true;
        if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9')
                        p++, digits = true;
        }
        if (!digits)
                return false;
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (!(*p >= '0' && *p <= '9'))
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        if (*p)
                return false;
        char *end = NULL;
        errno = 0;
        double d = strtod(s, &end);
        if (errno != 0 || !end || *end)
                return false;
        *ret = d;
        return true;
}

static json_t *scalar_to_json(const yaml_event_t *ev) {
        const char *v = (const char *) ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *) ev->data.scalar.tag;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

        if (tag && streq(tag, YAML_STR_TAG))
                return json_stringn(v, len);
        if (!plain || strlen(v) != len) /* quoted, block, or embedded NUL */
                return json_stringn(v, len);
        if (len == 0 || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL"))
                return json_null();
        if (streq(v, "true") || streq(v, "True") || streq(v, "TRUE"))
                return json_true();
        if (streq(v, "false") || streq(v, "False") || streq(v, "FALSE"))
                return json_false();
        json_int_t i;
        if (parse_int(v, &i))
                return json_integer(i);
        double d;
        if (parse_float(v, &d))
                return json_real(d);
        return json_stringn(v, len);
}

static int parse_node(YamlCtx *c, yaml_event_t *ev, unsigned depth, json_t **ret);

static int parse_sequence(YamlCtx *c, unsigned depth, json_t **ret) {
        _cleanup_json_ json_t *arr = json_array();
        if (!arr)
                return -ENOMEM;
        for (;;) {
                yaml_event_t ev;
                int r = next_event(c, &ev);
                if (r < 0)
                        return r;
                if (ev.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&ev);
                        break;
                }
                json_t *item = NULL;
                r = parse_node(c, &ev, depth + 1, &item);
                yaml_event_delete(&ev);
                if (r < 0)
                        return r;
                if (json_array_append_new(arr, item) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(arr);
        return 0;
}

static int parse_mapping(YamlCtx *c, unsigned depth, json_t **ret) {
        _cleanup_json_ json_t *obj = json_object();
        if (!obj)
                return -ENOMEM;
        for (;;) {
                yaml_event_t kev;
                int r = next_event(c, &kev);
                if (r < 0)
                        return r;
                if (kev.type == YAML_MAPPING_END_EVENT) {
                        yaml_event_delete(&kev);
                        break;
                }
                if (kev.type != YAML_SCALAR_EVENT) {
                        r = yaml_fail(c, &kev.start_mark, "mapping keys must be scalars", NULL);
                        yaml_event_delete(&kev);
                        return r;
                }
                _cleanup_free_ char *key = strndup((const char *) kev.data.scalar.value, kev.data.scalar.length);
                yaml_mark_t kmark = kev.start_mark;
                bool plain = kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                yaml_event_delete(&kev);
                if (!key)
                        return -ENOMEM;
                if (plain && streq(key, "<<"))
                        return yaml_fail(c, &kmark, "merge keys ('<<') are not supported", NULL);
                if (json_object_get(obj, key))
                        return yaml_fail(c, &kmark, "duplicate key", key);

                yaml_event_t vev;
                r = next_event(c, &vev);
                if (r < 0)
                        return r;
                json_t *val = NULL;
                r = parse_node(c, &vev, depth + 1, &val);
                yaml_event_delete(&vev);
                if (r < 0)
                        return r;
                if (json_object_set_new(obj, key, val) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

static int parse_node(YamlCtx *c, yaml_event_t *ev, unsigned depth, json_t **ret) {
        if (depth > YAML_MAX_DEPTH)
                return yaml_fail(c, &ev->start_mark, "nesting too deep", NULL);
        switch (ev->type) {
        case YAML_SCALAR_EVENT: {
                json_t *v = scalar_to_json(ev);
                if (!v)
                        return -ENOMEM;
                *ret = v;
                return 0;
        }
        case YAML_SEQUENCE_START_EVENT:
                return parse_sequence(c, depth, ret);
        case YAML_MAPPING_START_EVENT:
                return parse_mapping(c, depth, ret);
        case YAML_ALIAS_EVENT:
                return yaml_fail(c, &ev->start_mark, "aliases are not supported", NULL);
        default:
                return yaml_fail(c, &ev->start_mark, "unexpected YAML event", NULL);
        }
}

int launch_yaml_parse(const char *text, size_t len, const char *what, json_t **ret_docs, KvErr *e) {
        YamlCtx c = { .what = what ? what : "input", .e = e };
        if (len > LAUNCH_MAX_INPUT)
                return kverr_set(e, KV_ERR_DECODE, -EMSGSIZE, "%s: input is %zu bytes, limit is %u", c.what, len,
                                 LAUNCH_MAX_INPUT);
        if (!yaml_parser_initialize(&c.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&c.parser, (const unsigned char *) text, len);

        _cleanup_json_ json_t *docs = json_array();
        int r = docs ? 0 : -ENOMEM;
        bool done = false;
        while (r >= 0 && !done) {
                yaml_event_t ev;
                r = next_event(&c, &ev);
                if (r < 0)
                        break;
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_STREAM_START_EVENT:
                case YAML_DOCUMENT_START_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        break;
                default: {
                        json_t *node = NULL;
                        r = parse_node(&c, &ev, 0, &node);
                        if (r >= 0) {
                                if (json_is_null(node))
                                        json_decref(node); /* empty document */
                                else if (json_array_append_new(docs, node) < 0)
                                        r = -ENOMEM;
                        }
                        break;
                }
                }
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&c.parser);
        if (r < 0) {
                if (!kverr_is_set(e))
                        kverr_set(e, KV_ERR_DECODE, r, "%s: cannot parse: %s", c.what, strerror(-r));
                return r;
        }
        *ret_docs = TAKE_PTR(docs);
        return 0;
}
