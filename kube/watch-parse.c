/* SPDX-License-Identifier: Apache-2.0 */
/* A watch response is one JSON event a line ({"type":"ADDED","object":{...}}\n), arriving in chunks cut
 * anywhere: the parser carries the partial line over and parses each complete one. */
#include "common/json-util.h"
#include "kube/kube-priv.h"

static const char *const event_types[_KUBE_EVENT_MAX] = {
        [KUBE_EVENT_ADDED] = "ADDED",       [KUBE_EVENT_MODIFIED] = "MODIFIED", [KUBE_EVENT_DELETED] = "DELETED",
        [KUBE_EVENT_BOOKMARK] = "BOOKMARK", [KUBE_EVENT_ERROR] = "ERROR",
};

const char *kube_event_type_to_string(KubeEventType t) {
        return t >= 0 && t < _KUBE_EVENT_MAX ? event_types[t] : NULL;
}

static int event_type_from_string(const char *s) {
        for (int i = 0; i < _KUBE_EVENT_MAX; i++)
                if (streq(s, event_types[i]))
                        return i;
        return -EINVAL;
}

int kube_watch_parse_line(const char *line, size_t len, KubeEventType *ret_type, json_t **ret_obj, KvErr *e) {
        _cleanup_json_ json_t *ev = NULL;
        int r = json_parse_object(line, len, KUBE_WATCH_LINE_MAX, "watch event", &ev, e);
        if (r < 0)
                return r;
        const char *type;
        json_t *obj;
        if ((r = json_get_string(ev, "watch event", "type", true, &type, e)) < 0 ||
            (r = json_get_object(ev, "watch event", "object", true, &obj, e)) < 0)
                return r;
        int t = event_type_from_string(type);
        if (t < 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "watch event: 'type' must be ADDED, MODIFIED, DELETED, "
                                 "BOOKMARK or ERROR, got '%.32s'", type);
        *ret_type = (KubeEventType) t;
        *ret_obj = json_incref(obj);
        return 0;
}

static int dispatch(const char *line, size_t len, kube_line_event_t cb, void *userdata, KvErr *e) {
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
                len--;
        if (len == 0)
                return 0;
        KubeEventType t;
        _cleanup_json_ json_t *obj = NULL;
        int r = kube_watch_parse_line(line, len, &t, &obj, e);
        return r < 0 ? r : cb(t, obj, userdata);
}

int kube_line_parser_feed(KubeLineParser *p, const char *data, size_t len, kube_line_event_t cb, void *userdata,
                          KvErr *e) {
        while (len > 0) {
                const char *nl = memchr(data, '\n', len);
                size_t n = nl ? (size_t) (nl - data) : len;
                if (p->buf.len + n > KUBE_WATCH_LINE_MAX)
                        return kverr_set(e, KV_ERR_DECODE, -EFBIG, "watch event: a line longer than %d bytes",
                                         KUBE_WATCH_LINE_MAX);
                int r;
                if (!nl)
                        return kube_buf_append(&p->buf, data, n);
                if (p->buf.len) {
                        if ((r = kube_buf_append(&p->buf, data, n)) < 0)
                                return r;
                        r = dispatch(p->buf.data, p->buf.len, cb, userdata, e);
                        p->buf.len = 0;
                } else
                        r = dispatch(data, n, cb, userdata, e);
                if (r < 0)
                        return r;
                data += n + 1;
                len -= n + 1;
        }
        return 0;
}

void kube_line_parser_done(KubeLineParser *p) {
        kube_buf_clear(&p->buf);
}
