/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes' protobuf bodies (controller/kproto.c) and the pod status subresource's metadata
 * (ctl_store_set_status_meta). The inputs tests/data/controller/{pod-status,event}.pb are what the real
 * Multus v4.2.3 (client-go v0.32.5, ContentType protobuf) sent to the embedded API: the pods/status PUT that
 * writes k8s.v1.cni.cncf.io/network-status and an AddedInterface event; their JSON is compared with golden
 * files. Then every truncation of them, and hand-made bodies for each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"
#include "tests/unit/helpers.h"

#include "common/fileio.h"
#include "common/json-util.h"

#include "controller/kproto.h"
#include "controller/store.h"

static char *data(const char *name, size_t *ret_n) {
        char path[512];
        char *buf = NULL;
        snprintf(path, sizeof path, "%s/controller/%s", test_datadir(), name);
        assert_int_equal(read_file_max(path, 1 << 20, &buf, ret_n), 0);
        return buf;
}

static const CtlResource *res_in(const char *group, const char *plural) {
        const CtlResource *r = ctl_resource_find(group, "v1", plural);
        assert_non_null(r);
        return r;
}

static const CtlResource *res(const char *plural) {
        return res_in("", plural);
}

static void decode_golden(const char *pb, const CtlResource *r, const char *golden, bool want_spec) {
        size_t n;
        _cleanup_free_ char *buf = data(pb, &n);
        _cleanup_json_ json_t *o = NULL;
        bool spec = !want_spec;
        KvErr e = {};
        int rc = ctl_proto_decode(r, buf, n, &o, &spec, &e);
        if (rc < 0)
                fail_msg("%s: %s", pb, e.msg);
        assert_true(spec == want_spec);
        _cleanup_free_ char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        assert_non_null(text);
        size_t l = strlen(text);
        _cleanup_free_ char *nl = malloc(l + 2);
        memcpy(nl, text, l);
        strcpy(nl + l, "\n");
        assert_golden(nl, "controller/%s", golden);
        /* every shorter body is refused with a message, never read past */
        for (size_t k = 0; k < n; k++) {
                json_t *x = NULL;
                KvErr e2 = {};
                rc = ctl_proto_decode(r, buf, k, &x, NULL, &e2);
                if (rc == 0) {
                        /* a cut at a field boundary of the envelope's last fields may still be a whole body */
                        json_decref(x);
                        continue;
                }
                assert_true(rc == -EINVAL);
                assert_true(e2.msg[0] != '\0');
        }
}

static void test_multus_bodies(void **state) {
        (void) state;
        decode_golden("pod-status.pb", res("pods"), "pod-status.json", true);
        decode_golden("event.pb", res("events"), "event.json", false);
}

/* a tiny encoder for the hand-made bodies */
typedef struct Buf {
        uint8_t b[512];
        size_t n;
} Buf;

static void put_varint(Buf *b, uint64_t v) {
        do {
                b->b[b->n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
}

static void put_bytes(Buf *b, uint32_t num, const void *p, size_t n) {
        put_varint(b, (uint64_t) num << 3 | 2);
        put_varint(b, n);
        memcpy(b->b + b->n, p, n);
        b->n += n;
}

static void put_str(Buf *b, uint32_t num, const char *s) {
        put_bytes(b, num, s, strlen(s));
}

/* "k8s\0" + Unknown{typeMeta{apiVersion, kind}, raw} */
static void envelope(Buf *out, const char *api, const char *kind, const Buf *raw) {
        Buf tm = {};
        put_str(&tm, 1, api);
        put_str(&tm, 2, kind);
        memcpy(out->b, "k8s", 4);
        out->n = 4;
        put_bytes(out, 1, tm.b, tm.n);
        put_bytes(out, 2, raw->b, raw->n);
}

/* a Pod whose ObjectMeta is meta plus the length-delimited field num */
static void pod_meta_plus(Buf *out, const Buf *meta, uint32_t num, const void *p, size_t n) {
        Buf m = *meta, raw = {};
        put_bytes(&m, num, p, n);
        put_bytes(&raw, 1, m.b, m.n);
        envelope(out, "v1", "Pod", &raw);
}

static void refused(const CtlResource *r, const Buf *body, int want, const char *msg_part) {
        json_t *o = NULL;
        KvErr e = {};
        int rc = ctl_proto_decode(r, body->b, body->n, &o, NULL, &e);
        if (rc != want || !strstr(e.msg, msg_part))
                fail_msg("got %d '%s', want %d '...%s...'", rc, e.msg, want, msg_part);
        assert_null(o);
}

static void test_refusals(void **state) {
        (void) state;
        const CtlResource *pods = res("pods"), *nads = res_in("k8s.cni.cncf.io", "network-attachment-definitions");
        Buf meta = {}, raw = {}, body = {};
        put_str(&meta, 1, "p1");
        put_str(&meta, 3, "default");
        put_bytes(&raw, 1, meta.b, meta.n);
        envelope(&body, "v1", "Pod", &raw);
        /* the good one first: metadata only */
        _cleanup_json_ json_t *o = NULL;
        KvErr e = {};
        assert_int_equal(ctl_proto_decode(pods, body.b, body.n, &o, NULL, &e), 0);
        assert_string_equal(ctl_md(o, "name"), "p1");
        assert_string_equal(json_string_value(json_object_get(o, "kind")), "Pod");

        refused(nads, &body, -EPROTONOSUPPORT, "Pod and Event only");
        refused(res("events"), &body, -EINVAL, "the envelope names 'v1' 'Pod', this is 'v1' 'Event'");
        Buf nomagic = body;
        nomagic.b[0] = 'x';
        refused(pods, &nomagic, -EINVAL, "no Kubernetes envelope");
        Buf wrongapi = {};
        envelope(&wrongapi, "v2", "Pod", &raw);
        refused(pods, &wrongapi, -EINVAL, "names 'v2' 'Pod'");

        /* a field the tables do not know: ObjectMeta 99 */
        Buf b2 = {};
        pod_meta_plus(&b2, &meta, 99, "x", 1);
        refused(pods, &b2, -EINVAL, "ObjectMeta field 99 at byte 32:"); /* 4 + 2+9 + 2 + 2 + (2+2 + 2+7) */
        refused(pods, &b2, -EINVAL, "not known to the embedded API");

        /* a wire type that does not match: ObjectMeta.generation (int64) as bytes */
        Buf b3 = {};
        pod_meta_plus(&b3, &meta, 7, "1", 1);
        refused(pods, &b3, -EINVAL, "ObjectMeta field 7");

        /* a string that is not UTF-8: the name */
        Buf b4 = {};
        pod_meta_plus(&b4, &(Buf){}, 1, "\xff\xfe", 2);
        refused(pods, &b4, -EINVAL, "not UTF-8");

        /* a content encoding */
        Buf b5 = body;
        put_str(&b5, 3, "gzip");
        refused(pods, &b5, -EINVAL, "contentEncoding");

        /* no raw object */
        Buf b6 = {}, tm = {};
        put_str(&tm, 1, "v1");
        put_str(&tm, 2, "Pod");
        memcpy(b6.b, "k8s", 4);
        b6.n = 4;
        put_bytes(&b6, 1, tm.b, tm.n);
        refused(pods, &b6, -EINVAL, "holds no object");
}

static void put_varint_field(Buf *b, uint32_t num, uint64_t v) {
        put_varint(b, (uint64_t) num << 3);
        put_varint(b, v);
}

/* Zero values: a pointer field (ContainerStatus.started) on the wire is set, false included; an omitempty
 * field (PodStatus.message, ContainerStateTerminated.signal) at zero is left out; a field always written
 * (ready, restartCount, exitCode) is there at zero. */
static void test_zero_values(void **state) {
        (void) state;
        Buf term = {}, st8 = {}, cs = {}, status = {}, raw = {}, body = {};
        put_varint_field(&term, 1, 0); /* exitCode */
        put_varint_field(&term, 2, 0); /* signal */
        put_bytes(&st8, 3, term.b, term.n);
        put_str(&cs, 1, "c");
        put_bytes(&cs, 2, st8.b, st8.n);
        put_varint_field(&cs, 4, 0); /* ready */
        put_varint_field(&cs, 5, 0); /* restartCount */
        put_varint_field(&cs, 9, 0); /* started (*bool) */
        put_str(&status, 3, "");     /* message */
        put_bytes(&status, 8, cs.b, cs.n);
        put_bytes(&raw, 3, status.b, status.n);
        envelope(&body, "v1", "Pod", &raw);
        _cleanup_json_ json_t *o = NULL;
        KvErr e = {};
        assert_int_equal(ctl_proto_decode(res("pods"), body.b, body.n, &o, NULL, &e), 0);
        _cleanup_free_ char *text = json_dumps(json_object_get(o, "status"), JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(text, "{\"containerStatuses\":[{\"name\":\"c\",\"ready\":false,\"restartCount\":0,"
                                  "\"started\":false,\"state\":{\"terminated\":{\"exitCode\":0}}}]}");
}

/* The pod status subresource takes labels, annotations and finalizers with the status (kube-apiserver's pod
 * status strategy); without meta (custom resources) only the status. */
static void test_status_meta(void **state) {
        CtlFxHead *fx = ctl_fx_new(sizeof *fx);
        *state = fx;
        const CtlResource *pods = res("pods");
        KvErr e = {};
        _cleanup_json_ json_t *in = ctl_fx_parse("{\"metadata\":{\"name\":\"p\",\"labels\":{\"a\":\"1\"},"
                                                 "\"annotations\":{\"x\":\"1\"}},\"spec\":{\"containers\":[]}}"),
                              *out = NULL, *got = NULL;
        assert_int_equal(ctl_store_create(fx->s, pods, "default", in, &out, &e), 0);
        uint64_t rv = ctl_store_rv(fx->s);

        _cleanup_json_ json_t *st = ctl_fx_parse("{\"phase\":\"Running\"}"),
                              *meta = ctl_fx_parse("{\"name\":\"p\",\"uid\":\"forged\",\"labels\":{\"a\":\"1\"},"
                                                   "\"annotations\":{\"x\":\"1\",\"k8s.v1.cni.cncf.io/"
                                                   "network-status\":\"[]\"}}");
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, meta, &e), 0);
        assert_int_equal(ctl_store_rv(fx->s), rv + 1);
        assert_int_equal(ctl_store_get(fx->s, pods, "default", "p", &got), 0);
        json_t *md = json_object_get(got, "metadata");
        assert_string_equal(json_string_value(json_object_get(json_object_get(md, "annotations"),
                                                              "k8s.v1.cni.cncf.io/network-status")),
                            "[]");
        assert_string_equal(json_string_value(json_object_get(md, "uid")), ctl_md(out, "uid")); /* server-owned */
        assert_string_equal(json_string_value(json_object_get(json_object_get(got, "status"), "phase")), "Running");
        assert_non_null(json_object_get(json_object_get(got, "spec"), "containers"));

        /* the same again: no new version */
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, meta, &e), 0);
        assert_int_equal(ctl_store_rv(fx->s), rv + 1);

        /* labels left out are removed; without meta they stay as they are */
        json_object_del(meta, "labels");
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, meta, &e), 0);
        json_decref(got);
        assert_int_equal(ctl_store_get(fx->s, pods, "default", "p", &got), 0);
        assert_null(json_object_get(json_object_get(got, "metadata"), "labels"));
        _cleanup_json_ json_t *st2 = ctl_fx_parse("{\"phase\":\"Succeeded\"}");
        assert_int_equal(ctl_store_set_status(fx->s, pods, "default", "p", st2, &e), 0);
        json_decref(got);
        assert_int_equal(ctl_store_get(fx->s, pods, "default", "p", &got), 0);
        assert_non_null(json_object_get(json_object_get(json_object_get(got, "metadata"), "annotations"), "x"));

        /* refused: a non-string annotation, labels not an object; nothing changes */
        rv = ctl_store_rv(fx->s);
        _cleanup_json_ json_t *bad1 = ctl_fx_parse("{\"annotations\":{\"x\":1}}"),
                              *bad2 = ctl_fx_parse("{\"labels\":[]}"), *bad3 = ctl_fx_parse("{\"finalizers\":[1]}");
        e = (KvErr){};
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, bad1, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'metadata.annotations.x' must be a string"));
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, bad2, &e), -EINVAL);
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "p", st, bad3, &e), -EINVAL);
        assert_int_equal(ctl_store_rv(fx->s), rv);
        assert_int_equal(ctl_store_set_status_meta(fx->s, pods, "default", "nope", st, meta, &e), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_multus_bodies),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_zero_values),
                cmocka_unit_test_teardown(test_status_meta, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
