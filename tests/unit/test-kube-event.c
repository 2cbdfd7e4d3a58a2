/* SPDX-License-Identifier: Apache-2.0 */
/* kube/event.c: the Event object as client-go's recorder shapes it, dedup (count and lastTimestamp patched), the
 * per-object budget, messages cut at a character boundary, bad input refused without a write, failed writes
 * forgotten, the cache's eviction. The writer here keeps what it was given; the clock is the test's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/json-util.h"
#include "kube/event.h"
#include "tests/unit/helpers.h"

#define T0 1796000000000000000ULL /* 2026-11-30T00:53:20Z in nanoseconds */

typedef struct Sink {
        json_t *writes; /* [{ns, name, patch, body}] */
        int fail;       /* the result of the next writes while < 0 */
        uint64_t now;
} Sink;

static int sink_write(void *userdata, const char *ns, const char *name, json_t *body, bool patch) {
        Sink *k = userdata;
        if (k->fail < 0)
                return k->fail;
        json_array_append_new(k->writes, json_pack("{s:s,s:s,s:b,s:O}", "ns", ns, "name", name, "patch", patch,
                                                   "body", body));
        return 0;
}

static uint64_t sink_clock(void *userdata) {
        return ((Sink *) userdata)->now;
}

static KubeEventRecorder *recorder(Sink *k, unsigned cache, unsigned burst) {
        KubeEventRecorder *r = NULL;
        k->writes = json_array();
        k->now = T0;
        KubeEventRecorderOpts o = { .component = "kvnet-controller", .host = "node1", .cache_size = cache,
                                    .burst = burst, .clock_ns = sink_clock, .clock_data = k };
        assert_int_equal(kube_event_recorder_new(&o, sink_write, k, &r), 0);
        return r;
}

static json_t *last_write(Sink *k) {
        return json_array_get(k->writes, json_array_size(k->writes) - 1);
}

static const KubeObjectRef VM = { "kubevirt.io/v1", "VirtualMachine", "default", "web", "uid-1" };

static void test_shape(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 0);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "SuccessfulCreate", "created %s", "web"), 1);
        json_t *w = last_write(&k), *b = json_object_get(w, "body");
        assert_false(json_is_true(json_object_get(w, "patch")));
        assert_string_equal(json_string_value(json_object_get(w, "ns")), "default");
        char want[64];
        snprintf(want, sizeof want, "web.%llx", (unsigned long long) T0);
        assert_string_equal(json_string_value(json_object_get(w, "name")), want);
        _cleanup_free_ char *text = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(text,
                            "{\"apiVersion\":\"v1\",\"count\":1,\"eventTime\":null,\"firstTimestamp\":\"2026-11-30T"
                            "00:53:20Z\",\"involvedObject\":{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMac"
                            "hine\",\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"uid-1\"},\"kind\":\"Event\","
                            "\"lastTimestamp\":\"2026-11-30T00:53:20Z\",\"message\":\"created web\",\"metadata\":{"
                            "\"name\":\"web.18ecac7c009a0000\",\"namespace\":\"default\"},\"reason\":\"SuccessfulCr"
                            "eate\",\"reportingComponent\":\"kvnet-controller\",\"reportingInstance\":\"node1\",\"sour"
                            "ce\":{\"component\":\"kvnet-controller\",\"host\":\"node1\"},\"type\":\"Normal\"}");
        /* a cluster-scoped object: the Event lives in "default", involvedObject has no namespace */
        KubeObjectRef node = { "v1", "Node", NULL, "node1", NULL };
        assert_int_equal(kube_event_record(r, &node, "Warning", "NodeNotReady", "gone"), 1);
        w = last_write(&k);
        assert_string_equal(json_string_value(json_object_get(w, "ns")), "default");
        assert_null(json_object_get(json_object_get(json_object_get(w, "body"), "involvedObject"), "namespace"));
        assert_null(json_object_get(json_object_get(json_object_get(w, "body"), "involvedObject"), "uid"));
        json_decref(k.writes);
}

static void test_ref_of_object(void **state) {
        (void) state;
        _cleanup_json_ json_t *o =
                json_pack("{s:{s:s,s:s,s:s}}", "metadata", "name", "p", "namespace", "ns1", "uid", "u");
        KubeObjectRef ref = kube_object_ref(o, "v1", "Pod");
        assert_string_equal(ref.api_version, "v1");
        assert_string_equal(ref.kind, "Pod");
        assert_string_equal(ref.namespace_, "ns1");
        assert_string_equal(ref.name, "p");
        assert_string_equal(ref.uid, "u");
        json_object_set_new(o, "kind", json_string("Other"));
        assert_string_equal(kube_object_ref(o, "v1", "Pod").kind, "Other");
}

static void test_dedup(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 0);
        assert_int_equal(kube_event_record(r, &VM, "Warning", "FailedCreate", "no room"), 1);
        const char *first = json_string_value(json_object_get(last_write(&k), "name"));
        k.now += 5000000000ULL;
        assert_int_equal(kube_event_record(r, &VM, "Warning", "FailedCreate", "no room"), 2);
        json_t *w = last_write(&k);
        assert_true(json_is_true(json_object_get(w, "patch")));
        assert_string_equal(json_string_value(json_object_get(w, "name")), first);
        _cleanup_free_ char *patch = json_dumps(json_object_get(w, "body"), JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(patch, "{\"count\":2,\"lastTimestamp\":\"2026-11-30T00:53:25Z\"}");
        assert_int_equal(kube_event_record(r, &VM, "Warning", "FailedCreate", "no room"), 2);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(last_write(&k), "body"), "count")), 3);
        /* another message, type, reason or object: another Event */
        assert_int_equal(kube_event_record(r, &VM, "Warning", "FailedCreate", "no room at all"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "FailedCreate", "no room"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Warning", "Other", "no room"), 1);
        KubeObjectRef vm2 = VM;
        vm2.uid = "uid-2"; /* a VM of that name made again */
        assert_int_equal(kube_event_record(r, &vm2, "Warning", "FailedCreate", "no room"), 1);
        KubeEventStats st = kube_event_stats(r);
        assert_int_equal(st.posted, 5);
        assert_int_equal(st.counted, 2);
        assert_int_equal(st.dropped, 0);
        json_decref(k.writes);
}

static void test_budget(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick %d", i), 1);
        /* the burst is spent: new Events and repeats alike are dropped, nothing written */
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick 3"), 0);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick 0"), 0);
        assert_int_equal(json_array_size(k.writes), 3);
        /* another object has a budget of its own */
        KubeObjectRef other = VM;
        other.name = "db";
        assert_int_equal(kube_event_record(r, &other, "Normal", "Tick", "tick"), 1);
        /* one more every 5 minutes */
        k.now += 299ULL * 1000000000ULL;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick 4"), 0);
        k.now += 2ULL * 1000000000ULL;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick 4"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Tick", "tick 5"), 0);
        assert_int_equal(kube_event_stats(r).dropped, 4);
        json_decref(k.writes);
}

static void test_bad_input(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 0);
        KubeObjectRef noname = VM;
        noname.name = "";
        char reason[200];
        memset(reason, 'R', sizeof reason - 1);
        reason[sizeof reason - 1] = '\0';
        assert_int_equal(kube_event_record(r, &noname, "Normal", "X", "m"), -EINVAL);
        assert_int_equal(kube_event_record(r, NULL, "Normal", "X", "m"), -EINVAL);
        assert_int_equal(kube_event_record(r, &VM, "Info", "X", "m"), -EINVAL);
        assert_int_equal(kube_event_record(r, &VM, NULL, "X", "m"), -EINVAL);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "", "m"), -EINVAL);
        assert_int_equal(kube_event_record(r, &VM, "Normal", reason, "m"), -EINVAL);
        assert_int_equal(json_array_size(k.writes), 0);
        /* no recorder (a component without an API): nothing, no error */
        assert_int_equal(kube_event_record(NULL, &VM, "Normal", "X", "m"), 0);
        KubeEventRecorder *none = NULL;
        assert_int_equal(kube_event_recorder_new(&(KubeEventRecorderOpts){ .component = "" }, sink_write, &k, &none),
                         -EINVAL);
        assert_null(none);
        json_decref(k.writes);
}

static void test_long_message_and_name(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 0);
        char msg[2100] = "";
        for (int i = 0; i < 1030; i++)
                strcat(msg, "\xc3\xa9"); /* é: two bytes, the cut must not split one */
        assert_int_equal(kube_event_record(r, &VM, "Normal", "Long", "%s", msg), 1);
        const char *m = json_string_value(json_object_get(json_object_get(last_write(&k), "body"), "message"));
        assert_non_null(m); /* jansson refuses invalid UTF-8: a split character would have failed the record */
        assert_true(strlen(m) <= KUBE_EVENT_MESSAGE_MAX);
        assert_string_equal(m + strlen(m) - 3, "...");
        assert_int_equal(strlen(m), 1020 + 3);
        /* not UTF-8 (a stray byte, a truncated sequence, an overlong form, a surrogate): marked, not dropped */
        assert_int_equal(kube_event_record(r, &VM, "Warning", "Bytes", "%s",
                                           "qemu: \xff\xfe x \xc3 y \xc0\xaf z \xed\xa0\x80 \xc3\xa9"),
                         1);
        assert_string_equal(json_string_value(json_object_get(json_object_get(last_write(&k), "body"), "message")),
                            "qemu: ?? x ? y ?? z ??? \xc3\xa9");
        char name[254];
        memset(name, 'a', 253);
        name[253] = '\0';
        KubeObjectRef big = VM;
        big.name = name;
        assert_int_equal(kube_event_record(r, &big, "Normal", "Long", "x"), 1);
        const char *ev = json_string_value(json_object_get(last_write(&k), "name"));
        assert_int_equal(strlen(ev), 253); /* a DNS subdomain still: the object's part is cut */
        json_t *io = json_object_get(json_object_get(last_write(&k), "body"), "involvedObject");
        assert_string_equal(json_string_value(json_object_get(io, "name")), name);
        json_decref(k.writes);
}

static void test_failed_writes(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 0, 0);
        k.fail = -ECONNREFUSED;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), -ECONNREFUSED);
        k.fail = 0;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), 1); /* nothing was remembered */
        k.fail = -EIO;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), -EIO); /* the patch */
        k.fail = 0;
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), 1); /* posted anew */
        const char *name = json_string_value(json_object_get(last_write(&k), "name"));
        char keep[320];
        snprintf(keep, sizeof keep, "%s", name);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), 2);
        /* an asynchronous writer learns later that it failed (the Event expired: 404) */
        kube_event_forget(r, "default", keep);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "m"), 1);
        assert_int_equal(kube_event_stats(r).failed, 3);
        json_decref(k.writes);
}

static void test_eviction(void **state) {
        (void) state;
        Sink k = {};
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = recorder(&k, 2, 0);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "1"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "2"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "1"), 2); /* "1" used last: "2" goes next */
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "3"), 1);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "1"), 2);
        assert_int_equal(kube_event_record(r, &VM, "Normal", "A", "2"), 1); /* forgotten: a new Event */
        /* budgets are evicted the same way: three objects in a table of two, each still limited */
        KubeObjectRef o[3] = { VM, VM, VM };
        o[0].name = "x";
        o[1].name = "y";
        o[2].name = "z";
        for (int i = 0; i < 30; i++)
                IGNORE_RESULT(kube_event_record(r, &o[i % 3], "Normal", "B", "%d", i));
        assert_int_equal(kube_event_stats(r).posted, 4 + 30); /* a new bucket for an evicted object starts full */
        json_decref(k.writes);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shape),        cmocka_unit_test(test_ref_of_object),
                cmocka_unit_test(test_dedup),        cmocka_unit_test(test_budget),
                cmocka_unit_test(test_bad_input),    cmocka_unit_test(test_long_message_and_name),
                cmocka_unit_test(test_failed_writes), cmocka_unit_test(test_eviction),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
