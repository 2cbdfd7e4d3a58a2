// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over netd's socket boundary: the JSON line parser and attach_request_parse()
// (which includes the IPAM config parser). Only parsing: nothing here touches the kernel.
//
// Build and run (from the repo root):
//   SRC="tests/fuzz/fuzz-netd-request.c $(ls netd/*.c | grep -v -e netd/main.c -e netd/ctl/kvnetctl.c) common/*.c"
//   LIBS="$(pkg-config --cflags --libs libmnl libnftnl jansson libbpf) -Ibuild/ebpf"  # after make
//   clang -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -Icommon -fsanitize=fuzzer,address,undefined $SRC $LIBS -o build/fuzz-netd
//   mkdir -p build/fuzz-netd-corpus && cp tests/data/netd/*.json build/fuzz-netd-corpus/
//   build/fuzz-netd -max_total_time=60 -max_len=8192 build/fuzz-netd-corpus
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
        json_decref(o);
        return 0;
}
