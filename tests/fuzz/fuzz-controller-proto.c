// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over controller/kproto.c, the embedded API's decoder of Kubernetes' protobuf request bodies
// (what the real Multus sends: a pods/status PUT and events): the same bytes as a Pod and as an Event. Neither may
// crash or read past the input; a refusal names its reason; an accepted body is a JSON object with the kind's
// apiVersion and kind, and decoding it again gives the same JSON.
//
// Build: `make fuzz` -> build/fuzz/fuzz-controller-proto (sources: FUZZ_SRC_fuzz-controller-proto in the Makefile).
// Run:   `make fuzz-smoke`, or build/fuzz/fuzz-controller-proto -max_total_time=60 build/fuzz/corpus/fuzz-controller-proto
//        tests/fuzz/corpus/fuzz-controller-proto
// Seeds: tests/fuzz/corpus/fuzz-controller-proto/: Multus v4.2.3's pods/status PUT and AddedInterface event.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/kproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const CtlResource *res, const uint8_t *data, size_t size) {
        json_t *o = NULL;
        KvErr e = {};
        bool spec = false;
        int r = ctl_proto_decode(res, data, size, &o, &spec, &e);
        if (r < 0) {
                if (o || !e.msg[0])
                        __builtin_trap();
                return;
        }
        if (!json_is_object(o) || !json_is_string(json_object_get(o, "kind")) ||
            strcmp(json_string_value(json_object_get(o, "kind")), res->kind) != 0)
                __builtin_trap();
        json_t *again = NULL;
        if (ctl_proto_decode(res, data, size, &again, NULL, &e) < 0 || !json_equal(o, again))
                __builtin_trap();
        json_decref(again);
        json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* an exact-size copy, so that ASan sees a read past the end */
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        one(ctl_resource_find("", "v1", "pods"), copy, size);
        one(ctl_resource_find("", "v1", "events"), copy, size);
        free(copy);
        return 0;
}
