/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/kproto.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/json-util.h"
#include "common/util.h"

/* ---- the messages (k8s.io/api core/v1 and apimachinery meta/v1 generated.proto, field numbers as there) ---- */

typedef enum PType {
        PT_STRING,
        PT_BOOL,
        PT_INT32,
        PT_INT64,
        PT_MSG,       /* a nested message (repeated: an array of them) */
        PT_MAP_SS,    /* map<string, string> */
        PT_MAP_QTY,   /* map<string, resource.Quantity>: values as the quantity's string */
        PT_TIME,      /* meta.v1.Time {seconds, nanos}: "2006-01-02T15:04:05Z" */
        PT_MICROTIME, /* meta.v1.MicroTime: "2006-01-02T15:04:05.000000Z" */
        PT_RAW_JSON,  /* meta.v1.FieldsV1 {Raw}: the JSON it holds */
        PT_SKIP,      /* recognised, not decoded (Pod.spec) */
} PType;

enum {
        F_REPEATED = 1 << 0,
        F_ALWAYS = 1 << 1, /* written even when empty/zero/false (no omitempty in the json tag) */
        F_PTR = 1 << 2,    /* a pointer in k8s.io/api: on the wire only when set, so written even when zero */
};

typedef struct PMsg PMsg;
typedef struct PField {
        uint32_t num;
        const char *name;
        PType type;
        unsigned flags;
        const PMsg *msg;
} PField;

struct PMsg {
        const char *name;
        const PField *fields;
        size_t n;
};

#define MSG(var, pname, ...)                                                                                       \
        static const PField var##_fields[] = { __VA_ARGS__ };                                                      \
        static const PMsg var = { pname, var##_fields, ELEMENTSOF(var##_fields) }

MSG(m_owner_ref, "OwnerReference", { 1, "kind", PT_STRING, F_ALWAYS, NULL }, { 3, "name", PT_STRING, F_ALWAYS, NULL },
    { 4, "uid", PT_STRING, F_ALWAYS, NULL }, { 5, "apiVersion", PT_STRING, F_ALWAYS, NULL },
    { 6, "controller", PT_BOOL, F_PTR, NULL }, { 7, "blockOwnerDeletion", PT_BOOL, F_PTR, NULL });
MSG(m_fields_v1, "FieldsV1", { 1, "Raw", PT_RAW_JSON, 0, NULL });
MSG(m_managed, "ManagedFieldsEntry", { 1, "manager", PT_STRING, 0, NULL }, { 2, "operation", PT_STRING, 0, NULL },
    { 3, "apiVersion", PT_STRING, 0, NULL }, { 4, "time", PT_TIME, 0, NULL }, { 6, "fieldsType", PT_STRING, 0, NULL },
    { 7, "fieldsV1", PT_MSG, 0, &m_fields_v1 }, { 8, "subresource", PT_STRING, 0, NULL });
MSG(m_object_meta, "ObjectMeta", { 1, "name", PT_STRING, 0, NULL }, { 2, "generateName", PT_STRING, 0, NULL },
    { 3, "namespace", PT_STRING, 0, NULL }, { 4, "selfLink", PT_STRING, 0, NULL }, { 5, "uid", PT_STRING, 0, NULL },
    { 6, "resourceVersion", PT_STRING, 0, NULL }, { 7, "generation", PT_INT64, 0, NULL },
    { 8, "creationTimestamp", PT_TIME, 0, NULL }, { 9, "deletionTimestamp", PT_TIME, 0, NULL },
    { 10, "deletionGracePeriodSeconds", PT_INT64, F_PTR, NULL }, { 11, "labels", PT_MAP_SS, 0, NULL },
    { 12, "annotations", PT_MAP_SS, 0, NULL }, { 13, "ownerReferences", PT_MSG, F_REPEATED, &m_owner_ref },
    { 14, "finalizers", PT_STRING, F_REPEATED, NULL }, { 17, "managedFields", PT_MSG, F_REPEATED, &m_managed });

MSG(m_pod_condition, "PodCondition", { 1, "type", PT_STRING, F_ALWAYS, NULL }, { 2, "status", PT_STRING, F_ALWAYS, NULL },
    { 3, "lastProbeTime", PT_TIME, 0, NULL }, { 4, "lastTransitionTime", PT_TIME, 0, NULL },
    { 5, "reason", PT_STRING, 0, NULL }, { 6, "message", PT_STRING, 0, NULL });
MSG(m_ip, "PodIP", { 1, "ip", PT_STRING, 0, NULL });
MSG(m_waiting, "ContainerStateWaiting", { 1, "reason", PT_STRING, 0, NULL }, { 2, "message", PT_STRING, 0, NULL });
MSG(m_running, "ContainerStateRunning", { 1, "startedAt", PT_TIME, 0, NULL });
MSG(m_terminated, "ContainerStateTerminated", { 1, "exitCode", PT_INT32, F_ALWAYS, NULL },
    { 2, "signal", PT_INT32, 0, NULL }, { 3, "reason", PT_STRING, 0, NULL }, { 4, "message", PT_STRING, 0, NULL },
    { 5, "startedAt", PT_TIME, 0, NULL }, { 6, "finishedAt", PT_TIME, 0, NULL },
    { 7, "containerID", PT_STRING, 0, NULL });
MSG(m_state, "ContainerState", { 1, "waiting", PT_MSG, 0, &m_waiting }, { 2, "running", PT_MSG, 0, &m_running },
    { 3, "terminated", PT_MSG, 0, &m_terminated });
MSG(m_claim, "ResourceClaim", { 1, "name", PT_STRING, F_ALWAYS, NULL }, { 2, "request", PT_STRING, 0, NULL });
MSG(m_resources, "ResourceRequirements", { 1, "limits", PT_MAP_QTY, 0, NULL }, { 2, "requests", PT_MAP_QTY, 0, NULL },
    { 3, "claims", PT_MSG, F_REPEATED, &m_claim });
MSG(m_mount_status, "VolumeMountStatus", { 1, "name", PT_STRING, F_ALWAYS, NULL },
    { 2, "mountPath", PT_STRING, F_ALWAYS, NULL }, { 3, "readOnly", PT_BOOL, 0, NULL },
    { 4, "recursiveReadOnly", PT_STRING, F_PTR, NULL });
MSG(m_container_status, "ContainerStatus", { 1, "name", PT_STRING, F_ALWAYS, NULL }, { 2, "state", PT_MSG, 0, &m_state },
    { 3, "lastState", PT_MSG, 0, &m_state }, { 4, "ready", PT_BOOL, F_ALWAYS, NULL },
    { 5, "restartCount", PT_INT32, F_ALWAYS, NULL }, { 6, "image", PT_STRING, F_ALWAYS, NULL },
    { 7, "imageID", PT_STRING, F_ALWAYS, NULL }, { 8, "containerID", PT_STRING, 0, NULL },
    { 9, "started", PT_BOOL, F_PTR, NULL }, { 10, "allocatedResources", PT_MAP_QTY, 0, NULL },
    { 11, "resources", PT_MSG, 0, &m_resources }, { 12, "volumeMounts", PT_MSG, F_REPEATED, &m_mount_status });
MSG(m_claim_status, "PodResourceClaimStatus", { 1, "name", PT_STRING, F_ALWAYS, NULL },
    { 2, "resourceClaimName", PT_STRING, F_PTR, NULL });
MSG(m_pod_status, "PodStatus", { 1, "phase", PT_STRING, 0, NULL },
    { 2, "conditions", PT_MSG, F_REPEATED, &m_pod_condition }, { 3, "message", PT_STRING, 0, NULL },
    { 4, "reason", PT_STRING, 0, NULL }, { 5, "hostIP", PT_STRING, 0, NULL }, { 6, "podIP", PT_STRING, 0, NULL },
    { 7, "startTime", PT_TIME, 0, NULL }, { 8, "containerStatuses", PT_MSG, F_REPEATED, &m_container_status },
    { 9, "qosClass", PT_STRING, 0, NULL }, { 10, "initContainerStatuses", PT_MSG, F_REPEATED, &m_container_status },
    { 11, "nominatedNodeName", PT_STRING, 0, NULL }, { 12, "podIPs", PT_MSG, F_REPEATED, &m_ip },
    { 13, "ephemeralContainerStatuses", PT_MSG, F_REPEATED, &m_container_status },
    { 14, "resize", PT_STRING, 0, NULL }, { 15, "resourceClaimStatuses", PT_MSG, F_REPEATED, &m_claim_status },
    { 16, "hostIPs", PT_MSG, F_REPEATED, &m_ip });
MSG(m_pod, "Pod", { 1, "metadata", PT_MSG, F_ALWAYS, &m_object_meta }, { 2, "spec", PT_SKIP, 0, NULL },
    { 3, "status", PT_MSG, F_ALWAYS, &m_pod_status });

MSG(m_object_ref, "ObjectReference", { 1, "kind", PT_STRING, 0, NULL }, { 2, "namespace", PT_STRING, 0, NULL },
    { 3, "name", PT_STRING, 0, NULL }, { 4, "uid", PT_STRING, 0, NULL }, { 5, "apiVersion", PT_STRING, 0, NULL },
    { 6, "resourceVersion", PT_STRING, 0, NULL }, { 7, "fieldPath", PT_STRING, 0, NULL });
MSG(m_event_source, "EventSource", { 1, "component", PT_STRING, 0, NULL }, { 2, "host", PT_STRING, 0, NULL });
MSG(m_event_series, "EventSeries", { 1, "count", PT_INT32, 0, NULL }, { 2, "lastObservedTime", PT_MICROTIME, 0, NULL });
MSG(m_event, "Event", { 1, "metadata", PT_MSG, F_ALWAYS, &m_object_meta },
    { 2, "involvedObject", PT_MSG, F_ALWAYS, &m_object_ref }, { 3, "reason", PT_STRING, 0, NULL },
    { 4, "message", PT_STRING, 0, NULL }, { 5, "source", PT_MSG, 0, &m_event_source },
    { 6, "firstTimestamp", PT_TIME, 0, NULL }, { 7, "lastTimestamp", PT_TIME, 0, NULL },
    { 8, "count", PT_INT32, 0, NULL }, { 9, "type", PT_STRING, 0, NULL }, { 10, "eventTime", PT_MICROTIME, 0, NULL },
    { 11, "series", PT_MSG, 0, &m_event_series }, { 12, "action", PT_STRING, 0, NULL },
    { 13, "related", PT_MSG, 0, &m_object_ref }, { 14, "reportingComponent", PT_STRING, 0, NULL },
    { 15, "reportingInstance", PT_STRING, 0, NULL });

/* runtime.Unknown and its TypeMeta */
MSG(m_type_meta, "TypeMeta", { 1, "apiVersion", PT_STRING, 0, NULL }, { 2, "kind", PT_STRING, 0, NULL });

static const struct {
        const char *group, *kind;
        const PMsg *msg;
} kinds[] = {
        { "", "Pod", &m_pod },
        { "", "Event", &m_event },
};

/* ---- the wire format ---- */

typedef struct Rd {
        const uint8_t *p;
        size_t n, off; /* off: from the start of the envelope's raw object, for messages */
        const char *msg;
        bool spec_skipped;
} Rd;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*pos >= n)
                        return -EINVAL;
                uint8_t b = p[(*pos)++];
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

static int bad(KvErr *e, const char *msg, uint32_t num, size_t off, const char *what) {
        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "protobuf body: %s field %u at byte %zu: %s", msg, num, off, what);
}

static int decode_msg(const PMsg *m, const uint8_t *p, size_t n, size_t base, json_t *out, Rd *rd, KvErr *e);

static json_t *time_json(const uint8_t *p, size_t n, bool micro, int *ret_r) {
        uint64_t secs = 0, nanos = 0, tag, v;
        size_t pos = 0;
        *ret_r = 0;
        while (pos < n) {
                if (varint(p, n, &pos, &tag) < 0 || (tag & 7) != WT_VARINT || varint(p, n, &pos, &v) < 0) {
                        *ret_r = -EINVAL;
                        return NULL;
                }
                if ((tag >> 3) == 1)
                        secs = v;
                else if ((tag >> 3) == 2)
                        nanos = v;
                else {
                        *ret_r = -EINVAL;
                        return NULL;
                }
        }
        if (n == 0)
                return NULL; /* the zero time: client-go writes an empty message, JSON null (left out here) */
        time_t t = (time_t) (int64_t) secs;
        struct tm tm;
        char buf[48];
        if (!gmtime_r(&t, &tm) || nanos >= 1000000000u) {
                *ret_r = -EINVAL;
                return NULL;
        }
        size_t k = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        if (micro)
                snprintf(buf + k, sizeof buf - k, ".%06uZ", (unsigned) (nanos / 1000));
        else
                snprintf(buf + k, sizeof buf - k, "Z");
        return json_string(buf);
}

/* a map entry {1: key, 2: value}; the value a string, or a Quantity {1: string} */
static int map_entry(const uint8_t *p, size_t n, bool qty, json_t *map, const char *msg, uint32_t num, size_t off,
                     KvErr *e) {
        char *key = NULL, *val = NULL;
        size_t pos = 0;
        int r = 0;
        while (pos < n && r == 0) {
                uint64_t tag, len;
                if (varint(p, n, &pos, &tag) < 0 || (tag & 7) != WT_LEN || varint(p, n, &pos, &len) < 0 ||
                    len > n - pos) {
                        r = -EINVAL;
                        break;
                }
                const uint8_t *s = p + pos;
                size_t sl = (size_t) len;
                if (qty && (tag >> 3) == 2) { /* Quantity {string = 1} */
                        size_t qp = 0;
                        uint64_t qt, ql;
                        sl = 0;
                        if (len > 0 && (varint(s, (size_t) len, &qp, &qt) < 0 || qt != ((1u << 3) | WT_LEN) ||
                                        varint(s, (size_t) len, &qp, &ql) < 0 || ql != len - qp))
                                r = -EINVAL;
                        else if (len > 0) {
                                s += qp;
                                sl = (size_t) ql;
                        }
                }
                char **dst = (tag >> 3) == 1 ? &key : (tag >> 3) == 2 ? &val : NULL;
                if (!dst)
                        r = -EINVAL;
                else if (r == 0) {
                        free(*dst);
                        *dst = strndup((const char *) s, sl);
                        if (!*dst)
                                r = -ENOMEM;
                }
                pos += (size_t) len;
        }
        json_t *jv = r == 0 && key ? json_string(val ? val : "") : NULL;
        if (r == 0 && (!jv || json_object_set_new(map, key, jv) < 0)) /* no key, or not UTF-8 */
                r = -EINVAL;
        free(key);
        free(val);
        return r == -ENOMEM ? kverr_set(e, KV_ERR_INTERNAL, r, "protobuf body: out of memory")
               : r < 0     ? bad(e, msg, num, off, "malformed map entry")
                           : 0;
}

static int put(json_t *out, const PField *f, json_t *v /* stolen */) {
        if (!v)
                return -ENOMEM;
        if (!(f->flags & F_REPEATED))
                return json_object_set_new(out, f->name, v) < 0 ? -ENOMEM : 0;
        json_t *arr = json_object_get(out, f->name);
        if (!arr) {
                arr = json_array();
                if (!arr || json_object_set_new(out, f->name, arr) < 0) {
                        json_decref(v);
                        return -ENOMEM;
                }
        }
        return json_array_append_new(arr, v) < 0 ? -ENOMEM : 0;
}

/* off: the field's tag in the body (for messages), s_off: its value's */
static int decode_field(const PField *f, uint64_t wt, uint64_t v, const uint8_t *s, size_t len, size_t off,
                        size_t s_off, json_t *out, Rd *rd, const char *msg, KvErr *e) {
        bool always = f->flags & (F_ALWAYS | F_REPEATED | F_PTR);
        int r = 0;
        switch (f->type) {
        case PT_BOOL:
        case PT_INT32:
        case PT_INT64:
                if (wt != WT_VARINT)
                        return bad(e, msg, f->num, off, "wrong wire type");
                if (f->type == PT_INT32)
                        v = (uint64_t) (int64_t) (int32_t) (uint32_t) v;
                if (v || always)
                        r = put(out, f, f->type == PT_BOOL ? json_boolean(v != 0) : json_integer((json_int_t) (int64_t) v));
                return r < 0 ? kverr_set(e, KV_ERR_INTERNAL, r, "protobuf body: out of memory") : 0;
        default:
                break;
        }
        if (wt != WT_LEN)
                return bad(e, msg, f->num, off, "wrong wire type");
        switch (f->type) {
        case PT_STRING: {
                if (memchr(s, 0, len))
                        return bad(e, msg, f->num, off, "NUL in a string");
                if (!len && !always)
                        return 0;
                json_t *js = json_stringn((const char *) s, len);
                if (!js)
                        return bad(e, msg, f->num, off, "a string that is not UTF-8");
                r = put(out, f, js);
                break;
        }
        case PT_MSG: {
                json_t *o = json_object();
                if (!o)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "protobuf body: out of memory");
                r = decode_msg(f->msg, s, len, s_off, o, rd, e);
                if (r < 0) {
                        json_decref(o);
                        return r;
                }
                r = put(out, f, o);
                break;
        }
        case PT_MAP_SS:
        case PT_MAP_QTY: {
                json_t *map = json_object_get(out, f->name);
                if (!map && (r = put(out, f, json_object())) < 0)
                        break;
                return map_entry(s, len, f->type == PT_MAP_QTY, json_object_get(out, f->name), msg, f->num, off, e);
        }
        case PT_TIME:
        case PT_MICROTIME: {
                json_t *t = time_json(s, len, f->type == PT_MICROTIME, &r);
                if (r < 0)
                        return bad(e, msg, f->num, off, "malformed time");
                if (t)
                        r = put(out, f, t);
                break;
        }
        case PT_RAW_JSON: {
                json_error_t jerr;
                json_t *j = len ? json_loadb((const char *) s, len, 0, &jerr) : NULL;
                if (len && !json_is_object(j)) {
                        json_decref(j);
                        return bad(e, msg, f->num, off, "raw field that is not a JSON object");
                }
                if (j) { /* FieldsV1's Raw is the object itself, not a field of it */
                        json_object_update(out, j);
                        json_decref(j);
                }
                break;
        }
        case PT_SKIP:
                rd->spec_skipped = true;
                break;
        default:
                return bad(e, msg, f->num, off, "unexpected type");
        }
        return r == -ENOMEM ? kverr_set(e, KV_ERR_INTERNAL, r, "protobuf body: out of memory") : r;
}

static int decode_msg(const PMsg *m, const uint8_t *p, size_t n, size_t base, json_t *out, Rd *rd, KvErr *e) {
        size_t pos = 0;
        while (pos < n) {
                size_t at = pos;
                uint64_t tag, v = 0, len = 0;
                if (varint(p, n, &pos, &tag) < 0)
                        return bad(e, m->name, 0, base + at, "truncated tag");
                uint32_t num = (uint32_t) (tag >> 3);
                uint64_t wt = tag & 7;
                const uint8_t *s = NULL;
                if (wt == WT_VARINT) {
                        if (varint(p, n, &pos, &v) < 0)
                                return bad(e, m->name, num, base + at, "truncated varint");
                } else if (wt == WT_LEN) {
                        if (varint(p, n, &pos, &len) < 0 || len > n - pos)
                                return bad(e, m->name, num, base + at, "truncated length-delimited value");
                        s = p + pos;
                        pos += (size_t) len;
                } else
                        return bad(e, m->name, num, base + at, "wire type not used by Kubernetes' messages");
                const PField *f = NULL;
                for (size_t i = 0; i < m->n && !f; i++)
                        if (m->fields[i].num == num)
                                f = &m->fields[i];
                if (!f)
                        return bad(e, m->name, num, base + at,
                                   "not known to the embedded API (send application/json)");
                int r = decode_field(f, wt, v, s, (size_t) len, base + at, s ? base + (size_t) (s - p) : 0, out, rd,
                                     m->name, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the envelope ---- */

bool ctl_proto_supported(const CtlResource *res) {
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(kinds[i].group, res->group) && streq(kinds[i].kind, res->kind))
                        return true;
        return false;
}

int ctl_proto_decode(const CtlResource *res, const void *buf, size_t n, json_t **ret, bool *ret_spec_skipped,
                     KvErr *e) {
        const PMsg *m = NULL;
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(kinds[i].group, res->group) && streq(kinds[i].kind, res->kind))
                        m = kinds[i].msg;
        if (!m)
                return kverr_set(e, KV_ERR_DECODE, -EPROTONOSUPPORT,
                                 "the embedded API decodes protobuf bodies of Pod and Event only, not %s: send "
                                 "application/json",
                                 res->kind);
        const uint8_t *p = buf;
        if (n < 4 || memcmp(p, "k8s\0", 4) != 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                 "protobuf body: no Kubernetes envelope (the 4 bytes \"k8s\\0\" and a runtime.Unknown)");
        /* runtime.Unknown: typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4 */
        _cleanup_json_ json_t *tm = json_object(), *obj = json_object();
        const uint8_t *raw = NULL;
        size_t raw_n = 0, pos = 4;
        if (!tm || !obj)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "protobuf body: out of memory");
        Rd rd = {};
        while (pos < n) {
                size_t at = pos;
                uint64_t tag = 0, len = 0;
                if (varint(p, n, &pos, &tag) < 0 || (tag & 7) != WT_LEN || varint(p, n, &pos, &len) < 0 ||
                    len > n - pos)
                        return bad(e, "Unknown", (uint32_t) (tag >> 3), at, "malformed envelope");
                const uint8_t *s = p + pos;
                pos += (size_t) len;
                switch (tag >> 3) {
                case 1: {
                        int r = decode_msg(&m_type_meta, s, (size_t) len, (size_t) (s - p), tm, &rd, e);
                        if (r < 0)
                                return r;
                        break;
                }
                case 2:
                        raw = s;
                        raw_n = (size_t) len;
                        break;
                case 3:
                        if (len)
                                return bad(e, "Unknown", 3, at, "a contentEncoding is not supported");
                        break;
                case 4:
                        break;
                default:
                        return bad(e, "Unknown", (uint32_t) (tag >> 3), at, "not a field of runtime.Unknown");
                }
        }
        char av[128];
        const char *want_av = ctl_api_version(res, NULL, av), *kind = json_string_value(json_object_get(tm, "kind")),
                   *api = json_string_value(json_object_get(tm, "apiVersion"));
        if (!streq_ptr(kind, res->kind) || !streq_ptr(api, want_av))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "protobuf body: the envelope names '%.64s' '%.64s', this is '%s' '%s'", api ? api : "",
                                 kind ? kind : "", want_av, res->kind);
        if (!raw)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "protobuf body: the envelope holds no object (raw)");
        int r = decode_msg(m, raw, raw_n, (size_t) (raw - p), obj, &rd, e);
        if (r < 0)
                return r;
        json_object_set_new(obj, "apiVersion", json_string(want_av));
        json_object_set_new(obj, "kind", json_string(res->kind));
        *ret = TAKE_PTR(obj);
        if (ret_spec_skipped)
                *ret_spec_skipped = rd.spec_skipped;
        return 0;
}
