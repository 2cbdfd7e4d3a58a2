// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over netd's socket boundary: the JSON line parser and attach_request_parse()
// (which includes the IPAM config parser), the trace verb's arguments on a node without attachments
// (which ends every request before the walk), and the kube verb's checks of its API requests (kube/wire.c's
// decoding, the allowed verbs, resources and bodies; a request that passes is answered over the socket only).
// Only parsing: nothing here touches the kernel.
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-netd-request, from the
//   sources listed as FUZZ_SRC_fuzz-netd-request in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-netd-request -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-netd-request tests/fuzz/corpus/fuzz-netd-request
// Seeds: tests/fuzz/corpus/fuzz-netd-request/: request lines as the socket carries them (tests/data/netd/).
#include <stdint.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *o = NULL;
        KvErr e = {};
        if (json_parse_object((const char *) data, size, 64 * 1024, "request", &o, &e) < 0)
                return 0;
        static const char *const verbs[] = { "add", "del", "check" };
        for (size_t i = 0; i < 3; i++) {
                AttachRequest req;
                KvErr ee = {};
                (void) !attach_request_parse(json_object_get(o, "args"), verbs[i], i == 0, &req, &ee);
                /* Every failure names something. */
                if (ee.code != 0 && ee.msg[0] == '\0')
                        __builtin_trap();
        }
        /* trace: a manager with no attachments refuses every request before it looks at the kernel */
        Manager m = {};
        json_t *res = NULL;
        KvErr te = {};
        if (do_trace(&m, json_object_get(o, "args"), &res, &te) == 0 || te.msg[0] == '\0')
                __builtin_trap();
        /* kube: its checks (the requests, their rules and bodies) end in a refusal that names something */
        KvErr ke = {};
        if (do_kube(&m, json_object_get(o, "args"), &res, &ke) == 0 || ke.msg[0] == '\0')
                __builtin_trap();
        json_decref(o);
        return 0;
}
