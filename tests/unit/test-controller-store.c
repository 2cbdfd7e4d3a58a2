/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded controller's object store (controller/store.c): checks, server-owned fields, optimistic
 * concurrency, JSON merge patch (RFC 7386), the watch event log, persistence across a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "controller/launchcheck.h"
#include "controller/crd.h"
#include "controller/events.h"
#include "controller/schema.h"
#include "common/json-util.h"
#include "controller/store.h"
#include "kube/event.h"
#include "tests/unit/helpers.h"

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vm;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        assert_non_null(fx->vm);
        *state = fx;
        return 0;
}

static json_t *J(const char *text) {
        json_error_t err;
        json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
        if (!v)
                print_message("bad test JSON: %s: %s\n", text, err.text);
        assert_non_null(v);
        return v;
}

static const char *md_str(json_t *o, const char *k) {
        return json_string_value(json_object_get(json_object_get(o, "metadata"), k));
}

/* A VirtualMachine named name; spec_extra continues its spec (which always has a template). */
#define VM(name, spec_extra)                                                                                  \
        "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"" name \
        "\"},\"spec\":{\"template\":{\"spec\":{\"domain\":{\"memory\":{\"guest\":\"64Mi\"}}}}" spec_extra "}}"

static void test_merge_patch_rfc7386(void **state) {
        (void) state;
        /* the examples of RFC 7386, appendix A */
        static const char *const cases[][3] = {
                { "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
                { "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
                { "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
                { "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
                { "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
                { "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
                { "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
                { "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
                { "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
                { "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
                { "{\"a\":\"foo\"}", "null", "null" },
                { "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
                { "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
                { "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
                { "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                json_t *t = J(cases[i][0]), *p = J(cases[i][1]), *want = J(cases[i][2]);
                json_t *got = ctl_merge_patch(t, p);
                if (!json_equal(got, want))
                        print_message("case %zu: got %s\n", i, json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY));
                assert_true(json_equal(got, want));
                json_t *t2 = J(cases[i][0]);
                assert_true(json_equal(t, t2)); /* the target is not changed */
                json_decref(t2);
                json_decref(t), json_decref(p), json_decref(want), json_decref(got);
        }
}

static void test_json_patch_rfc6902(void **state) {
        (void) state;
        /* examples of RFC 6902, appendix A, and RFC 6901's escapes */
        static const char *const ok[][3] = {
                { "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
                  "{\"baz\":\"qux\",\"foo\":\"bar\"}" },
                { "{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
                  "{\"foo\":[\"bar\",\"qux\",\"baz\"]}" },
                { "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}" },
                { "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
                  "{\"foo\":[\"bar\",\"baz\"]}" },
                { "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
                  "{\"baz\":\"boo\",\"foo\":\"bar\"}" },
                { "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
                  "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
                  "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}" },
                { "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}", "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
                  "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}" },
                { "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
                  "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
                  "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}" },
                { "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
                  "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}" },
                { "{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
                  "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}" },
                { "{\"a/b\":1,\"m~n\":2}", "[{\"op\":\"copy\",\"from\":\"/a~1b\",\"path\":\"/m~0n\"}]",
                  "{\"a/b\":1,\"m~n\":1}" },
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
                KvErr e = {};
                json_t *t = J(ok[i][0]), *p = J(ok[i][1]), *want = J(ok[i][2]);
                json_t *got = ctl_json_patch(t, p, &e);
                if (!got || !json_equal(got, want))
                        print_message("case %zu: %s\n", i, got ? json_dumps(got, JSON_COMPACT) : e.msg);
                assert_true(got && json_equal(got, want));
                json_decref(t), json_decref(p), json_decref(want), json_decref(got);
        }
        /* failures: all or nothing, named */
        static const char *const bad[][3] = {
                { "{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", "the value differs" },
                { "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", "no such location" },
                { "{\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/nope\"}]", "operation 0 (remove /nope)" },
                { "{\"foo\":[1]}", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1},{\"op\":\"replace\",\"path\":\"/foo/01\",\"value\":2}]",
                  "operation 1" },
                { "{\"foo\":{}}", "[{\"op\":\"move\",\"from\":\"/foo\",\"path\":\"/foo/bar\"}]", "'from' is a parent" },
                { "{}", "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]", "got 'frobnicate'" },
                { "{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", "no valid 'path'" },
                { "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", "has no 'value'" },
                { "{}", "{\"op\":\"add\"}", "must be an array" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                KvErr e = {};
                json_t *t = J(bad[i][0]), *p = J(bad[i][1]);
                json_t *got = ctl_json_patch(t, p, &e);
                if (got || !strstr(e.msg, bad[i][2]))
                        print_message("bad case %zu: %s\n", i, e.msg);
                assert_null(got);
                assert_non_null(strstr(e.msg, bad[i][2]));
                json_decref(t), json_decref(p);
        }
}

static void test_create_get_server_fields(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        json_t *in = J(VM("web", ",\"running\":false},\"status\":{\"ready\":true")), *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        assert_string_equal(md_str(out, "namespace"), "default");
        assert_string_equal(md_str(out, "resourceVersion"), "1");
        assert_int_equal(strlen(md_str(out, "uid")), 36);
        assert_non_null(md_str(out, "creationTimestamp"));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation")), 1);
        assert_null(json_object_get(out, "status")); /* the status is the controller's */
        assert_non_null(json_object_get(in, "status")); /* the caller's object is untouched */
        json_decref(out);
        e = (KvErr){};
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), -EEXIST);
        assert_non_null(strstr(e.msg, "\"web\" already exists"));
        /* the same name in another namespace is another object */
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "prod", in, &out, &e), 0);
        json_decref(out);
        assert_int_equal(ctl_store_get(fx->s, fx->vm, "default", "web", &out), 0);
        json_decref(out);
        assert_int_equal(ctl_store_get(fx->s, fx->vm, "default", "nope", &out), -ENOENT);
        json_t *l = ctl_store_list(fx->s, fx->vm, NULL, NULL);
        assert_int_equal(json_array_size(json_object_get(l, "items")), 2);
        assert_string_equal(json_string_value(json_object_get(l, "kind")), "VirtualMachineList");
        json_decref(l);
        l = ctl_store_list(fx->s, fx->vm, "prod", NULL);
        assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
        json_decref(l);
        json_decref(in);
        /* generateName */
        in = J("{\"metadata\":{\"generateName\":\"mig-\"},\"spec\":{\"vmiName\":\"web\"}}");
        const CtlResource *mig = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations");
        assert_int_equal(ctl_store_create(fx->s, mig, "default", in, &out, &e), 0);
        assert_int_equal(strncmp(md_str(out, "name"), "mig-", 4), 0);
        assert_int_equal(strlen(md_str(out, "name")), 9);
        assert_string_equal(json_string_value(json_object_get(out, "kind")), "VirtualMachineInstanceMigration");
        json_decref(out);
        json_decref(in);
}

static void test_bad_objects(void **state) {
        Fx *fx = *state;
        static const char *const bad[][2] = {
                { "[1]", "must be a JSON object" },
                { "{\"apiVersion\":\"v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"a\"}}", "'apiVersion' must be 'kubevirt.io/v1'" },
                { "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}", "'kind' must be 'VirtualMachine' here, got 'Pod'" },
                { "{\"kind\":7,\"metadata\":{\"name\":\"a\"}}", "'kind' must be 'VirtualMachine' here, got 'integer'" },
                { "{\"metadata\":\"x\"}", "'metadata' must be an object" },
                { "{\"metadata\":{}}", "'metadata.name' is required" },
                { "{\"metadata\":{\"name\":\"Web_1\"}}", "metadata.name: 'Web_1' is not a valid name" },
                { "{\"metadata\":{\"name\":\"a\",\"namespace\":\"other\"}}", "'metadata.namespace' 'other' does not match" },
                { "{\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":1}}}", "'metadata.labels.x' must be a string" },
                { "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}", "must not be set on an object to be created" },
                { "{\"metadata\":{\"name\":\"a\"},\"spec\":[]}", "'spec' must be an object" },
                { "{\"metadata\":{\"name\":\"a\"},\"spec\":{}}", "'spec.template' must be an object, got nothing" },
                { "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"template\":{},\"running\":\"yes\"}}",
                  "'spec.running' must be a boolean, got string" },
                { "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"template\":{},\"runStrategy\":\"Sometimes\"}}",
                  "'spec.runStrategy' must be Always, RerunOnFailure, Once, Manual or Halted, got 'Sometimes'" },
                { "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"template\":{},\"running\":true,\"runStrategy\":\"Always\"}}",
                  "'spec.running' and 'spec.runStrategy' are mutually exclusive" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                KvErr e = {};
                json_t *in = J(bad[i][0]), *out = NULL;
                if (json_is_object(in) && !json_object_get(in, "spec")) /* a valid spec: the case is about the rest */
                        json_object_set_new(in, "spec", J("{\"template\":{\"spec\":{\"domain\":{\"memory\":{\"guest\":\"64Mi\"}}}}}"));
                assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), -EINVAL);
                if (!strstr(e.msg, bad[i][1]))
                        print_message("case %zu: %s\n", i, e.msg);
                assert_non_null(strstr(e.msg, bad[i][1]));
                json_decref(in);
        }
        /* the other kinds' specs */
        KvErr e = {};
        json_t *out = NULL, *in = J("{\"metadata\":{\"name\":\"m\"},\"spec\":{}}");
        const CtlResource *mig = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations");
        const CtlResource *nad = ctl_resource_find("k8s.cni.cncf.io", "v1", "network-attachment-definitions");
        assert_int_equal(ctl_store_create(fx->s, mig, "default", in, &out, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.vmiName' (the VMI to migrate) is required"));
        json_decref(in);
        e = (KvErr){};
        in = J("{\"metadata\":{\"name\":\"n\"},\"spec\":{\"config\":\"{\\\"cniVersion\\\":\"}}");
        assert_int_equal(ctl_store_create(fx->s, nad, "default", in, &out, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "spec.config"));
        json_decref(in);
        e = (KvErr){};
        in = J("{\"metadata\":{\"name\":\"n\"},\"spec\":{\"config\":{}}}");
        assert_int_equal(ctl_store_create(fx->s, nad, "default", in, &out, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.config' must be a string holding the CNI config as JSON, got object"));
        json_decref(in);
        assert_int_equal(ctl_store_count(fx->s), 0);
        assert_int_equal(ctl_store_rv(fx->s), 0); /* nothing changed */
        assert_int_equal(ctl_check_name("namespace", "a.b", true, &e), -EINVAL);
        assert_int_equal(ctl_check_name("namespace", "kube-system", true, &e), 0);
        char long_name[300];
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = '\0';
        assert_int_equal(ctl_check_name("metadata.name", long_name, false, &e), -EINVAL);
}

static void test_update_patch_conflict(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        json_t *in = J(VM("web", ",\"running\":false")), *out = NULL, *cur = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        const char *uid = md_str(out, "uid");
        char uidbuf[40];
        snprintf(uidbuf, sizeof uidbuf, "%s", uid);
        json_decref(out);
        json_decref(in);
        /* a label only: no new generation */
        json_t *p = J("{\"metadata\":{\"labels\":{\"tier\":\"db\"}}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p, &out, &e), 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation")), 1);
        assert_string_equal(md_str(out, "resourceVersion"), "2");
        json_decref(out);
        json_decref(p);
        /* the spec: a new generation; the uid cannot be changed */
        p = J("{\"metadata\":{\"uid\":\"forged\"},\"spec\":{\"running\":true}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p, &out, &e), 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation")), 2);
        assert_string_equal(md_str(out, "uid"), uidbuf);
        assert_true(json_is_true(json_object_get(json_object_get(out, "spec"), "running")));
        json_t *labels = json_object_get(json_object_get(out, "metadata"), "labels");
        assert_string_equal(json_string_value(json_object_get(labels, "tier")), "db"); /* the earlier patch stays */
        json_decref(p);
        /* update with a stale resourceVersion: 409 Conflict, nothing changed */
        cur = out;
        json_t *stale = json_deep_copy(cur);
        json_object_set_new(json_object_get(stale, "metadata"), "resourceVersion", json_string("2"));
        e = (KvErr){};
        assert_int_equal(ctl_store_update(fx->s, fx->vm, "default", "web", stale, &out, &e), -EBUSY);
        assert_non_null(strstr(e.msg, "the object has been modified"));
        assert_int_equal(ctl_store_rv(fx->s), 3);
        /* with the current one it goes through; without one too (last writer wins, as in Kubernetes) */
        assert_int_equal(ctl_store_update(fx->s, fx->vm, "default", "web", cur, &out, &e), 0);
        json_decref(out);
        json_object_del(json_object_get(stale, "metadata"), "resourceVersion");
        assert_int_equal(ctl_store_update(fx->s, fx->vm, "default", "web", stale, &out, &e), 0);
        json_decref(out);
        /* the name of the body must be the object's */
        json_object_set_new(json_object_get(stale, "metadata"), "name", json_string("other"));
        assert_int_equal(ctl_store_update(fx->s, fx->vm, "default", "web", stale, &out, &e), -EINVAL);
        json_decref(stale);
        json_decref(cur);
        /* a patch cannot change the kind; a patch that is not an object is refused */
        p = J("{\"kind\":\"Pod\"}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p, &out, &e), -EINVAL);
        json_decref(p);
        p = J("[]");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p, &out, &e), -EINVAL);
        json_decref(p);
        p = J("{}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "nope", p, &out, &e), -ENOENT);
        json_decref(p);
}

typedef struct Seen {
        char types[16][12];
        size_t n;
} Seen;

static int collect(const char *type, json_t *obj, void *userdata) {
        Seen *s = userdata;
        (void) obj;
        if (s->n < 16)
                snprintf(s->types[s->n++], 12, "%s", type);
        return 0;
}

static void test_events_and_reopen(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        json_t *in = J(VM("a", "")), *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        json_decref(out);
        json_decref(in);
        in = J(VM("b", ""));
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        json_decref(out);
        json_decref(in);
        json_t *p = J("{\"spec\":{\"running\":true}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "a", p, &out, &e), 0);
        json_decref(out);
        json_decref(p);
        assert_int_equal(ctl_store_delete(fx->s, fx->vm, "default", "b", &out, &e), 0);
        assert_string_equal(md_str(out, "resourceVersion"), "4");
        json_decref(out);
        assert_int_equal(ctl_store_delete(fx->s, fx->vm, "default", "b", &out, &e), -ENOENT);

        Seen s = {};
        uint64_t rv = 0;
        assert_int_equal(ctl_store_events(fx->s, fx->vm, NULL, NULL, 0, collect, &s, &rv), 0);
        assert_int_equal(s.n, 4);
        assert_string_equal(s.types[0], "ADDED");
        assert_string_equal(s.types[2], "MODIFIED");
        assert_string_equal(s.types[3], "DELETED");
        assert_int_equal(rv, 4);
        s = (Seen){};
        assert_int_equal(ctl_store_events(fx->s, fx->vm, NULL, NULL, 2, collect, &s, &rv), 0);
        assert_int_equal(s.n, 2);

        /* reopen: objects and the counter survive (the counter also past the deleted newest object) */
        ctl_store_free(fx->s);
        assert_int_equal(ctl_store_open(fx->dir, false, &fx->s, &e), 0);
        assert_int_equal(ctl_store_count(fx->s), 1);
        assert_int_equal(ctl_store_rv(fx->s), 4);
        assert_int_equal(ctl_store_get(fx->s, fx->vm, "default", "a", &out), 0);
        assert_true(json_is_true(json_object_get(json_object_get(out, "spec"), "running")));
        json_decref(out);
        /* the event log went with the process: a watch from before the restart must relist (410) */
        s = (Seen){};
        assert_int_equal(ctl_store_events(fx->s, fx->vm, NULL, NULL, 2, collect, &s, &rv), -ESTALE);
        assert_int_equal(ctl_store_events(fx->s, fx->vm, NULL, NULL, 4, collect, &s, &rv), 0);
        assert_int_equal(s.n, 0);
        in = J(VM("c", ""));
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        assert_string_equal(md_str(out, "resourceVersion"), "5");
        json_decref(out);
        json_decref(in);
        /* the counter file is written at deletes; after a create or an update the newest object carries it */
        p = J("{\"spec\":{\"running\":false}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "c", p, &out, &e), 0);
        json_decref(out);
        json_decref(p);
        ctl_store_free(fx->s);
        assert_int_equal(ctl_store_open(fx->dir, false, &fx->s, &e), 0);
        assert_int_equal(ctl_store_rv(fx->s), 6);
}


/* The index of the store (lookups by resource, namespace and name) through many creates and deletes, a
 * reopen; ctl_store_ref() and ctl_store_items() share the stored objects, which a change replaces rather
 * than changes. */
static void test_index_and_refs(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        json_t *out = NULL;
        char name[32], body[512];
        const char *const nss[] = { "a", "b" };
        enum { N = 150 };
        for (size_t i = 0; i < N; i++)
                for (size_t k = 0; k < 2; k++) {
                        snprintf(name, sizeof name, "v%zu", i);
                        snprintf(body, sizeof body, VM("%s", ""), name);
                        json_t *in = J(body);
                        assert_int_equal(ctl_store_create(fx->s, fx->vm, nss[k], in, &out, &e), 0);
                        json_decref(out);
                        json_decref(in);
                }
        json_t *held = ctl_store_ref(fx->s, fx->vm, "a", "v7");
        assert_non_null(held);
        const char *held_rv = md_str(held, "resourceVersion");
        /* deletes in a scattered order: every third name, in namespace a, the last ones first */
        for (size_t i = N; i-- > 0;)
                if (i % 3 == 1) {
                        snprintf(name, sizeof name, "v%zu", i);
                        assert_int_equal(ctl_store_delete(fx->s, fx->vm, "a", name, &out, &e), 0);
                        assert_string_equal(md_str(out, "name"), name);
                        json_decref(out);
                }
        assert_string_equal(md_str(held, "resourceVersion"), held_rv); /* v7 deleted: the reader's copy stays */
        json_decref(held);
        for (int round = 0; round < 2; round++) {
                assert_int_equal(ctl_store_count(fx->s), 2 * N - N / 3);
                for (size_t i = 0; i < N; i++) {
                        snprintf(name, sizeof name, "v%zu", i);
                        json_t *a = ctl_store_ref(fx->s, fx->vm, "a", name);
                        json_t *b = ctl_store_ref(fx->s, fx->vm, "b", name);
                        assert_true((a != NULL) == (i % 3 != 1));
                        assert_non_null(b);
                        if (a)
                                assert_string_equal(md_str(a, "namespace"), "a");
                        assert_string_equal(md_str(b, "name"), name);
                        json_decref(a);
                        json_decref(b);
                }
                assert_null(ctl_store_ref(fx->s, fx->vm, "c", "v0"));
                ctl_store_free(fx->s);
                assert_int_equal(ctl_store_open(fx->dir, false, &fx->s, &e), 0);
        }
        /* items are the stored objects themselves; an update replaces the stored one */
        json_t *items = ctl_store_items(fx->s, fx->vm), *first = json_array_get(items, 0);
        assert_int_equal(json_array_size(items), 2 * N - N / 3);
        const char *fns = md_str(first, "namespace"), *fname = md_str(first, "name");
        json_t *same = ctl_store_ref(fx->s, fx->vm, fns, fname);
        assert_ptr_equal(same, first);
        json_decref(same);
        json_t *p = J("{\"spec\":{\"running\":true}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, fns, fname, p, &out, &e), 0);
        assert_null(json_object_get(json_object_get(first, "spec"), "running")); /* the reader's object */
        same = ctl_store_ref(fx->s, fx->vm, fns, fname);
        assert_ptr_equal(same, out);
        json_decref(same);
        json_decref(out);
        json_decref(p);
        json_decref(items);
}

/* What kvnet-launcher would refuse is refused at create and update, the field named in details. */
static void test_launcher_admission(void **state) {
        Fx *fx = *state;
        const CtlResource *vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        static const struct {
                bool vm;
                const char *spec, *field, *msg;
        } bad[] = {
                { false,
                  "{\"domain\":{\"memory\":{\"guest\":\"64Mi\"},\"devices\":{\"interfaces\":[{\"name\":\"default\","
                  "\"slirp\":{}}]}},\"networks\":[{\"name\":\"default\",\"pod\":{}}]}",
                  "spec.domain.devices.interfaces[0].slirp", "not supported by kvnet-launcher" },
                { true,
                  "{\"template\":{\"spec\":{\"domain\":{\"memory\":{\"guest\":\"64Mi\"},\"devices\":{\"disks\":[{"
                  "\"name\":\"d\"}]}},\"volumes\":[{\"name\":\"d\",\"hostDisk\":{\"path\":\"/etc/shadow\"}}]}}}",
                  "spec.template.spec.volumes[0].hostDisk", "not supported by kvnet-launcher" },
                { false, "{\"domain\":{}}", "", "spec.domain.memory.guest or spec.domain.resources.requests.memory is required" },
                { false, "{\"domain\":{\"memory\":{\"guest\":\"64Mi\"}},\"hostname\":7}", "spec.hostname",
                  "'hostname' must be a string, got integer" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[1024];
                snprintf(text, sizeof text, "{\"metadata\":{\"name\":\"x\"},\"spec\":%s}", bad[i].spec);
                KvErr e = {};
                json_t *in = J(text), *out = NULL;
                assert_int_equal(ctl_store_create(fx->s, bad[i].vm ? fx->vm : vmi, "default", in, &out, &e), -EINVAL);
                if (!strstr(e.msg, bad[i].msg) || strcmp(e.details, bad[i].field) != 0)
                        print_message("case %zu: %s [%s]\n", i, e.msg, e.details);
                assert_non_null(strstr(e.msg, bad[i].msg));
                assert_string_equal(e.details, bad[i].field);
                json_decref(in);
        }
        assert_int_equal(ctl_store_count(fx->s), 0);
        /* an update is checked the same way */
        KvErr e = {};
        json_t *in = J(VM("web", "")), *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
        json_t *p = J("{\"spec\":{\"template\":{\"spec\":{\"domain\":{\"devices\":{\"gpus\":[{}]}}}}}}");
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p, &out, &e), -EINVAL);
        assert_string_equal(e.details, "spec.template.spec.domain.devices.gpus");
        json_decref(p);
        /* nothing on this machine is looked at: an image the controller's host lacks is fine */
        e = (KvErr){};
        in = J("{\"metadata\":{\"name\":\"img\"},\"spec\":{\"domain\":{\"memory\":{\"guest\":\"64Mi\"},\"devices\":{"
               "\"disks\":[{\"name\":\"root\"}]}},\"volumes\":[{\"name\":\"root\",\"containerDisk\":{\"image\":"
               "\"quay.io/kubevirt/cirros-container-disk-demo:v1.2\"}}]}}");
        assert_int_equal(ctl_store_create(fx->s, vmi, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);

        char f[128];
        assert_string_equal(ctl_error_field("spec.domain: 'cpu' must be an object, got string", f, sizeof f),
                            "spec.domain.cpu");
        assert_string_equal(ctl_error_field("spec.networks[1].multus: 'networkName' is required", f, sizeof f),
                            "spec.networks[1].multus.networkName");
        assert_string_equal(ctl_error_field("create: 'spec.running' must be a boolean", f, sizeof f), "");
        assert_string_equal(ctl_error_field("no field here", f, sizeof f), "");
}

/* The member at a dotted path of objects. */
static json_t *jpath(json_t *o, const char *path) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", path);
        char *save = NULL;
        for (char *t = strtok_r(buf, ".", &save); o && t; t = strtok_r(NULL, ".", &save))
                o = json_object_get(o, t);
        return o;
}

/* A protobuf varint at *p (< end), advancing *p. */
static uint64_t pb_varint(const uint8_t **p, const uint8_t *end) {
        uint64_t v = 0;
        for (unsigned shift = 0; *p < end; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80))
                        break;
        }
        return v;
}

/* The length-delimited field `field` of the message [p, end) number `nth` (0-based): its bytes. */
static bool pb_field(const uint8_t *p, const uint8_t *end, unsigned field, unsigned nth, const uint8_t **ret,
                     size_t *ret_len) {
        while (p < end) {
                uint64_t tag = pb_varint(&p, end);
                assert_int_equal(tag & 7, 2); /* the document has strings and messages only */
                uint64_t len = pb_varint(&p, end);
                assert_true(len <= (uint64_t) (end - p));
                if ((tag >> 3) == field && nth-- == 0) {
                        *ret = p;
                        *ret_len = len;
                        return true;
                }
                p += len;
        }
        return false;
}

/* The schema is one table: the JSON and protobuf forms of /openapi/v2 and /openapi/v3 say the same. */
/* Cluster mode: a stand-in API server behind the remote hook — what it answers is what the mirror holds. */
typedef struct FakeApi {
        int calls[5];
        unsigned rv;
        bool conflict;
} FakeApi;

static int fake_remote(void *userdata, CtlRemoteOp op, const CtlResource *res, const char *ns, const char *name, json_t *body,
                       json_t **ret, KvErr *e) {
        (void) res;
        FakeApi *f = userdata;
        f->calls[op]++;
        if (f->conflict)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "the object has been modified");
        char rv[16];
        snprintf(rv, sizeof rv, "%u", ++f->rv);
        if (op == CTL_REMOTE_DELETE) {
                *ret = json_pack("{s:s, s:s}", "kind", "Status", "status", "Success");
                return 0;
        }
        *ret = op == CTL_REMOTE_PATCH ? json_pack("{s:s, s:s, s:{s:s, s:s}, s:O}", "apiVersion", "kubevirt.io/v1", "kind",
                                                  "VirtualMachine", "metadata", "name", name, "namespace", ns, "spec",
                                                  json_object_get(body, "spec"))
                                      : json_deep_copy(body);
        json_t *md = json_object_get(*ret, "metadata");
        json_object_set_new(md, "resourceVersion", json_string(rv));
        if (op == CTL_REMOTE_CREATE)
                json_object_set_new(md, "uid", json_string("server-uid"));
        return 0;
}

static void test_mirror(void **state) {
        (void) state;
        const CtlResource *vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        FakeApi f = {};
        CtlStore *s = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_open_mirror(fake_remote, &f, &s), 0);
        /* the informer's objects as they are, resourceVersion and all */
        _cleanup_json_ json_t *a = test_json("{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":"
                                             "{\"name\":\"a\",\"namespace\":\"ns\",\"resourceVersion\":\"41\"},\"spec\":{}}");
        assert_int_equal(ctl_store_mirror(s, vm, "ADDED", a), 0);
        _cleanup_json_ json_t *got = ctl_store_ref(s, vm, "ns", "a");
        assert_string_equal(ctl_md(got, "resourceVersion"), "41");
        assert_int_equal(ctl_store_mirror(s, vm, "MODIFIED", a), 0); /* the same version: nothing */
        /* a write is the API server's: its answer lands in the mirror */
        _cleanup_json_ json_t *b = test_json("{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":"
                                             "{\"name\":\"b\"},\"spec\":{\"running\":false,\"template\":{\"spec\":{\"domain\":{\"devices\":{},\"memory\":{\"guest\":\"64Mi\"}}}}}}");
        _cleanup_json_ json_t *created = NULL, *updated = NULL, *deleted = NULL;
        assert_int_equal(ctl_store_create(s, vm, "ns", b, &created, &e), 0);
        assert_int_equal(f.calls[CTL_REMOTE_CREATE], 1);
        assert_string_equal(ctl_md(created, "uid"), "server-uid");
        json_decref(got);
        got = ctl_store_ref(s, vm, "ns", "b");
        assert_string_equal(ctl_md(got, "resourceVersion"), "1");
        _cleanup_json_ json_t *st = json_pack("{s:b}", "ready", 1);
        assert_int_equal(ctl_store_set_status(s, vm, "ns", "b", st, &e), 0);
        assert_int_equal(f.calls[CTL_REMOTE_UPDATE_STATUS], 1);
        assert_int_equal(ctl_store_set_status(s, vm, "ns", "b", st, &e), 0); /* unchanged: not sent */
        assert_int_equal(f.calls[CTL_REMOTE_UPDATE_STATUS], 1);
        /* the server's 409 is the write's; the mirror keeps what it had */
        f.conflict = true;
        _cleanup_json_ json_t *p = json_pack("{s:{s:b}}", "spec", "running", 1);
        assert_int_equal(ctl_store_patch(s, vm, "ns", "b", p, &updated, &e), -EBUSY);
        json_decref(got);
        got = ctl_store_ref(s, vm, "ns", "b");
        assert_string_equal(ctl_md(got, "resourceVersion"), "2");
        assert_true(json_is_false(ctl_json_path(got, "spec.running")));
        f.conflict = false;
        assert_int_equal(ctl_store_patch(s, vm, "ns", "b", p, &updated, &e), 0);
        assert_int_equal(f.calls[CTL_REMOTE_PATCH], 2); /* the patch itself, not the whole object */
        assert_int_equal(f.calls[CTL_REMOTE_UPDATE], 0);
        assert_string_equal(ctl_md(updated, "resourceVersion"), "3");
        json_decref(got);
        got = ctl_store_ref(s, vm, "ns", "b");
        assert_true(json_is_true(ctl_json_path(got, "spec.running")));
        /* deleted (a Status answered): gone from the mirror; a watch's DELETED of it later changes nothing */
        assert_int_equal(ctl_store_delete(s, vm, "ns", "b", &deleted, &e), 0);
        assert_null(ctl_store_ref(s, vm, "ns", "b"));
        assert_int_equal(ctl_store_mirror(s, vm, "DELETED", updated), 0);
        assert_int_equal(ctl_store_mirror(s, vm, "DELETED", a), 0);
        assert_int_equal(ctl_store_count(s), 0);
        /* an object without a name or namespace is refused */
        _cleanup_json_ json_t *bad = test_json("{\"metadata\":{\"name\":\"x\"}}");
        assert_int_equal(ctl_store_mirror(s, vm, "ADDED", bad), -EINVAL);
        ctl_store_free(s);
}

static void test_published_schema(void **state) {
        (void) state;
        json_t *v2 = ctl_openapi_v2_json("t", "v");
        json_t *defs = json_object_get(v2, "definitions");
        assert_int_equal(json_object_size(defs), 5);
        json_t *vm = json_object_get(defs, "io.kubevirt.v1.VirtualMachine");
        json_t *gvk = json_object_get(vm, "x-kubernetes-group-version-kind");
        assert_int_equal(json_array_size(gvk), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(gvk, 1), "version")), "v1alpha3");
        json_t *ifc = jpath(vm, "properties.spec.properties.template.properties.spec.properties.domain.properties."
                                "devices.properties.interfaces.items.properties.masquerade");
        assert_non_null(strstr(json_string_value(json_object_get(ifc, "description")), "Masquerade binding"));
        assert_string_equal(json_string_value(json_array_get(jpath(vm, "properties.spec.required"), 0)), "template");
        assert_string_equal(json_string_value(jpath(vm, "properties.spec.properties.running.type")), "boolean");

        /* protobuf: Document{swagger 1 = "2.0", info 2, definitions 9 {NamedSchema 1 {name 1, value 2}}} */
        uint8_t *buf = NULL;
        size_t n = 0;
        assert_int_equal(ctl_openapi_v2_proto("t", "v", &buf, &n), 0);
        const uint8_t *f, *d, *end = buf + n;
        size_t flen, dlen;
        assert_true(pb_field(buf, end, 1, 0, &f, &flen));
        assert_int_equal(flen, 3);
        assert_memory_equal(f, "2.0", 3);
        assert_true(pb_field(buf, end, 9, 0, &d, &dlen));
        size_t k = 0;
        for (; pb_field(d, d + dlen, 1, (unsigned) k, &f, &flen); k++) {
                const uint8_t *name;
                size_t nlen;
                assert_true(pb_field(f, f + flen, 1, 0, &name, &nlen));
                assert_true(k < 5);
                char nm[128];
                snprintf(nm, sizeof nm, "%.*s", (int) nlen, name);
                assert_non_null(json_object_get(defs, nm));
                /* its schema: description 4 and properties 25 */
                const uint8_t *schema, *x;
                size_t slen, xlen;
                assert_true(pb_field(f, f + flen, 2, 0, &schema, &slen));
                assert_true(pb_field(schema, schema + slen, 4, 0, &x, &xlen));
                assert_true(pb_field(schema, schema + slen, 25, 0, &x, &xlen));
        }
        assert_int_equal(k, 5);
        free(buf);

        json_t *v3 = ctl_openapi_v3_gv("kubevirt.io", "v1alpha3", "t", "v");
        assert_true(json_equal(json_object_get(json_object_get(json_object_get(v3, "components"), "schemas"),
                                               "io.kubevirt.v1.VirtualMachine"), vm));
        assert_non_null(json_object_get(json_object_get(v3, "paths"),
                                        "/apis/kubevirt.io/v1alpha3/namespaces/{namespace}/virtualmachines/{name}"));
        assert_null(ctl_openapi_v3_gv("kubevirt.io", "v2", "t", "v"));
        json_decref(v3);
        json_decref(v2);
}

/* Every node of a CRD schema typed (structural), or an int-or-string; no additionalProperties: {} (not
 * structural); counts the free-form objects in *free. */
static void assert_structural(json_t *s, const char *where, size_t *free_objects) {
        const char *k;
        json_t *v, *props = json_object_get(s, "properties"), *items = json_object_get(s, "items");
        if (!json_is_true(json_object_get(s, "x-kubernetes-int-or-string")) && !json_is_string(json_object_get(s, "type")))
                fail_msg("%s: no type", where);
        json_t *ap = json_object_get(s, "additionalProperties");
        if (ap && !json_is_string(json_object_get(ap, "type")))
                fail_msg("%s: additionalProperties without a type", where);
        if (json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields")) && !props)
                (*free_objects)++;
        json_object_foreach(props, k, v) {
                char sub[1024];
                snprintf(sub, sizeof sub, "%s.%s", where, k);
                assert_structural(v, sub, free_objects);
        }
        if (items) {
                char sub[1024];
                snprintf(sub, sizeof sub, "%s[]", where);
                assert_structural(items, sub, free_objects);
        }
}

/* The CRDs (deploy/crds/) come from the same table: structural, both KubeVirt versions, the v2 descriptions. */
static void test_crds(void **state) {
        (void) state;
        json_t *crds = NULL, *crd;
        size_t i;
        assert_int_equal(ctl_crds(&crds), 0);
        assert_int_equal(json_array_size(crds), 6);
        json_t *v2 = ctl_openapi_v2_json("t", "v");
        json_array_foreach(crds, i, crd) {
                const char *name = json_string_value(jpath(crd, "metadata.name"));
                json_t *versions = jpath(crd, "spec.versions"), *v;
                size_t j, storage = 0;
                json_array_foreach(versions, j, v) {
                        json_t *schema = jpath(v, "schema.openAPIV3Schema");
                        size_t free_objects = 0;
                        assert_structural(schema, name, &free_objects);
                        assert_true(free_objects > 0); /* status at least */
                        /* the root metadata: nothing but the type, as the API server requires */
                        json_t *md = jpath(schema, "properties.metadata");
                        assert_int_equal(json_object_size(md), 1);
                        assert_string_equal(json_string_value(json_object_get(md, "type")), "object");
                        storage += json_is_true(json_object_get(v, "storage"));
                        assert_true(json_is_true(json_object_get(v, "served")));
                }
                assert_int_equal(storage, 1);
        }
        json_t *vm = json_array_get(crds, 0);
        assert_string_equal(json_string_value(jpath(vm, "metadata.name")), "virtualmachines.kubevirt.io");
        json_t *alpha = json_array_get(jpath(vm, "spec.versions"), 1);
        assert_string_equal(json_string_value(json_object_get(alpha, "name")), "v1alpha3");
        assert_true(json_is_true(json_object_get(alpha, "deprecated")));
        assert_non_null(jpath(alpha, "subresources.status"));
        json_t *run = jpath(json_array_get(jpath(vm, "spec.versions"), 0), "schema.openAPIV3Schema.properties.spec.properties.running");
        assert_true(json_equal(json_object_get(run, "description"),
                               jpath(json_object_get(json_object_get(v2, "definitions"), "io.kubevirt.v1.VirtualMachine"),
                                     "properties.spec.properties.running.description")));
        json_t *mem = jpath(json_array_get(jpath(vm, "spec.versions"), 0),
                            "schema.openAPIV3Schema.properties.spec.properties.template.properties.spec.properties.domain."
                            "properties.memory.properties.guest");
        assert_true(json_is_true(json_object_get(mem, "x-kubernetes-int-or-string")));
        json_t *vmi = json_array_get(crds, 1);
        json_t *cols = jpath(json_array_get(jpath(vmi, "spec.versions"), 0), "additionalPrinterColumns");
        assert_string_equal(json_string_value(jpath(json_array_get(cols, 2), "jsonPath")), ".status.interfaces[0].ipAddress");
        assert_string_equal(json_string_value(jpath(json_array_get(cols, 4), "jsonPath")),
                            ".status.conditions[?(@.type=='Ready')].status");
        json_t *nad = json_array_get(crds, 3);
        assert_string_equal(json_string_value(jpath(nad, "spec.names.plural")), "network-attachment-definitions");
        assert_null(jpath(json_array_get(jpath(nad, "spec.versions"), 0), "subresources"));
        json_t *nc = json_array_get(crds, 5);
        assert_string_equal(json_string_value(jpath(nc, "metadata.name")), "networkclaims.kvnet.io");
        assert_string_equal(json_string_value(jpath(nc, "spec.scope")), "Cluster");
        json_t *spec = jpath(json_array_get(jpath(nc, "spec.versions"), 0), "schema.openAPIV3Schema.properties.spec");
        assert_true(json_is_true(json_object_get(spec, "x-kubernetes-preserve-unknown-fields")));
        assert_string_equal(json_string_value(jpath(spec, "properties.targetReady.type")), "boolean");
        assert_string_equal(json_string_value(jpath(spec, "properties.ips.items.type")), "string");
        json_decref(v2);
        json_decref(crds);
}

/* The controllers' Events through the store (controller/events.c): posted about a stored object, a repeat counted on
 * it (the merge patch), and the embedded API's expiry an hour after an Event's last occurrence. */
static void test_event_recorder_and_expiry(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        const CtlResource *ev = ctl_resource_find("", "v1", "events");
        _cleanup_json_ json_t *vm = ctl_fx_parse(VM("web", ",\"running\":false"));
        _cleanup_json_ json_t *stored = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", vm, &stored, &e), 0);
        ctl_event(fx->s, fx->vm, stored, "Normal", "Tick", "no recorder yet: nothing");
        assert_int_equal(ctl_fx_count(fx->s, ev), 0);
        assert_int_equal(ctl_events_open(fx->s, "kvnet-controller", NULL, &e), 0);
        ctl_event(fx->s, fx->vm, stored, "Warning", "FailedCreate", "Error creating virtual machine instance: %s", "x");
        ctl_event_at(fx->s, fx->vm, "default", "web", "Warning", "FailedCreate",
                     "Error creating virtual machine instance: %s", "x");
        ctl_event_at(fx->s, fx->vm, "default", "nosuch", "Normal", "Tick", "no such object: nothing");
        /* a long message is cut by the recorder, at a character, marked "..." */
        char longmsg[2001];
        memset(longmsg, 'x', sizeof longmsg - 1);
        longmsg[sizeof longmsg - 1] = '\0';
        ctl_event(fx->s, fx->vm, stored, "Normal", "Long", "%s", longmsg);
        _cleanup_json_ json_t *lst = ctl_store_list(fx->s, ev, "default", NULL);
        size_t li;
        json_t *it;
        bool seen = false;
        json_array_foreach(json_object_get(lst, "items"), li, it) {
                const char *m = json_string_value(json_object_get(it, "message"));
                if (!streq_ptr(json_string_value(json_object_get(it, "reason")), "Long"))
                        continue;
                seen = true;
                assert_int_equal(strlen(m), KUBE_EVENT_MESSAGE_MAX);
                assert_string_equal(m + KUBE_EVENT_MESSAGE_MAX - 3, "...");
                /* not counted below */
                json_t *out = NULL;
                KvErr de = {};
                const char *nm = json_string_value(ctl_json_path(it, "metadata.name"));
                assert_int_equal(ctl_store_delete(fx->s, ev, "default", nm, &out, &de), 0);
                json_decref(out);
        }
        assert_true(seen);
        _cleanup_json_ json_t *list = ctl_store_list(fx->s, ev, "default", NULL);
        json_t *items = json_object_get(list, "items");
        assert_int_equal(json_array_size(items), 1);
        json_t *one = json_array_get(items, 0);
        assert_int_equal(json_integer_value(json_object_get(one, "count")), 2);
        assert_string_equal(json_string_value(ctl_json_path(one, "involvedObject.uid")), ctl_md(stored, "uid"));
        assert_string_equal(json_string_value(ctl_json_path(one, "involvedObject.apiVersion")), "kubevirt.io/v1");
        assert_string_equal(json_string_value(ctl_json_path(one, "source.component")), "kvnet-controller");
        /* expiry: by lastTimestamp, else eventTime, else creationTimestamp; the recent one stays */
        const char *old[] = {
                "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"a.1\"},"
                "\"involvedObject\":{\"name\":\"a\"},"
                "\"reason\":\"R\",\"lastTimestamp\":\"2026-01-01T00:00:00Z\"}",
                "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"b.1\"},"
                "\"involvedObject\":{\"name\":\"b\"},"
                "\"reason\":\"R\",\"eventTime\":\"2026-01-01T00:00:00.000001Z\"}",
        };
        for (size_t i = 0; i < ELEMENTSOF(old); i++) {
                _cleanup_json_ json_t *o = ctl_fx_parse(old[i]), *out = NULL;
                assert_int_equal(ctl_store_create(fx->s, ev, "default", o, &out, &e), 0);
        }
        assert_int_equal(ctl_fx_count(fx->s, ev), 3);
        int64_t now = (int64_t) time(NULL);
        assert_int_equal(ctl_events_expire(fx->s, now, 3600), 2);
        assert_int_equal(ctl_fx_count(fx->s, ev), 1);
        /* an hour later the recorded one goes too */
        assert_int_equal(ctl_events_expire(fx->s, now + 3601 + 60, 3600), 1);
        assert_int_equal(ctl_fx_count(fx->s, ev), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_merge_patch_rfc7386),
                cmocka_unit_test(test_json_patch_rfc6902),
                cmocka_unit_test(test_published_schema),
                cmocka_unit_test(test_mirror),
                cmocka_unit_test(test_crds),
                cmocka_unit_test_setup_teardown(test_create_get_server_fields, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_bad_objects, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_launcher_admission, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_update_patch_conflict, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_events_and_reopen, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_index_and_refs, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_event_recorder_and_expiry, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
