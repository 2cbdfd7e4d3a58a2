// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the embedded controller's input path (controller/store.c): a request body as
// the API server receives it -> JSON parse -> create / merge patch / replace of a VirtualMachine.
// Invariants: every refusal names its reason; a refused request changes nothing (resourceVersion);
// what the store accepted has the resource's apiVersion/kind, a valid name and a resourceVersion;
// a merge patch is idempotent (RFC 7386: applying it twice equals applying it once).
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-controller-store, from the
//   sources listed as FUZZ_SRC_fuzz-controller-store in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-controller-store -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-controller-store tests/fuzz/corpus/fuzz-controller-store
// Seeds: tests/fuzz/corpus/fuzz-controller-store/: byte 0 % 4 (0 create, 1 merge patch, 2 replace, 3 JSON patch), then the body.
//
// The store lives in a temporary directory (files are written without fsync).
#include <stdint.h>
#include <stdlib.h>

#include "common/json-util.h"
#include "controller/store.h"

static CtlStore *store;
static const CtlResource *vm;

static void must(bool ok) {
        if (!ok)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!store) {
                char dir[] = "/tmp/kvnet-fuzz-ctl-XXXXXX";
                KvErr e = {};
                must(mkdtemp(dir) != NULL);
                must(ctl_store_open(dir, false, &store, &e) == 0);
                vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
                /* one object to patch and replace */
                /* (a spec kvnet-launcher takes: the store checks it with the launcher's parser) */
                json_t *seed = json_pack("{s:{s:s},s:{s:b,s:{s:{s:{s:{s:s}}}}}}", "metadata", "name", "web", "spec",
                                         "running", false, "template", "spec", "domain", "memory", "guest", "64Mi"),
                       *out;
                must(ctl_store_create(store, vm, "default", seed, &out, &e) == 0);
                json_decref(seed);
                json_decref(out);
        }
        if (size < 1)
                return 0;
        if (data[0] % 4 == 3) { /* a JSON patch (RFC 6902) of a fixed document */
                json_error_t err;
                json_t *ops = json_loadb((const char *) data + 1, size - 1, JSON_DECODE_ANY, &err);
                if (!ops)
                        return 0;
                json_t *t = json_pack("{s:s,s:[i,i],s:{s:s}}", "a", "b", "l", 1, 2, "m~n", "x/y", "z");
                KvErr pe = {};
                json_t *out = ctl_json_patch(t, ops, &pe);
                must(out || pe.msg[0] != '\0');
                json_decref(out), json_decref(t), json_decref(ops);
                return 0;
        }
        uint8_t op = data[0] % 4;
        json_t *in = NULL, *out = NULL;
        KvErr e = {};
        if (json_parse_object((const char *) data + 1, size - 1, 1 << 20, "body", &in, &e) < 0) {
                must(e.msg[0] != '\0');
                return 0;
        }
        uint64_t rv = ctl_store_rv(store);
        int r = op == 0 ? ctl_store_create(store, vm, "default", in, &out, &e)
                : op == 1 ? ctl_store_patch(store, vm, "default", "web", in, &out, &e)
                          : ctl_store_update(store, vm, "default", "web", in, &out, &e);
        if (r < 0) {
                must(e.msg[0] != '\0');
                must(ctl_store_rv(store) == rv);
        } else {
                must(ctl_store_rv(store) == rv + 1);
                must(streq_ptr(json_string_value(json_object_get(out, "apiVersion")), "kubevirt.io/v1"));
                must(streq_ptr(json_string_value(json_object_get(out, "kind")), "VirtualMachine"));
                json_t *md = json_object_get(out, "metadata");
                KvErr ne = {};
                must(ctl_check_name("name", json_string_value(json_object_get(md, "name")) ?: "", false, &ne) == 0);
                must(json_is_string(json_object_get(md, "resourceVersion")));
                if (op == 0) { /* keep the store small: take it away again */
                        json_t *gone = NULL;
                        must(ctl_store_delete(store, vm, "default", json_string_value(json_object_get(md, "name")),
                                              &gone, &e) == 0);
                        json_decref(gone);
                }
        }
        json_decref(out);
        json_t *t = json_pack("{s:s,s:{s:i}}", "a", "b", "c", "d", 1);
        json_t *once = ctl_merge_patch(t, in), *twice = ctl_merge_patch(once, in);
        must(json_equal(once, twice));
        json_decref(t), json_decref(once), json_decref(twice), json_decref(in);
        return 0;
}
