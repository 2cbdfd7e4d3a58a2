// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over kvnet-launcher's input path: YAML/JSON text -> libyaml -> jansson ->
// LaunchVmi (all checks) -> synthesized NICs -> domain XML (both accel types).
//
// Build and run (from the repo root; seeds are the launcher fixtures):
//   SRC="tests/fuzz/fuzz-vmi.c $(ls launcher/*.c | grep -v launcher/main.c) common/*.c"
//   LIBS="$(pkg-config --cflags --libs libmnl libnftnl jansson yaml-0.1)"
//   clang -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -Icommon -fsanitize=fuzzer,address,undefined $SRC $LIBS -o build/fuzz-vmi
//   mkdir -p build/fuzz-vmi-corpus && cp tests/data/launcher/*.yaml tests/data/launcher/*.json \
//       tests/data/launcher/bad/* build/fuzz-vmi-corpus/
//   build/fuzz-vmi -max_total_time=60 -max_len=8192 build/fuzz-vmi-corpus
//
// Image lookups use a directory that does not exist, so nothing outside the input is read
// except access()/open() probes of paths named in the input.
#include <stdint.h>

#include "launcher/launcher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const LaunchOptions o = { .image_dir = "/nonexistent-kvnet-fuzz", .state_dir = "/run/kvnet-fuzz" };
        LaunchVmi *v = NULL;
        KvErr e = {};
        if (launch_vmi_parse_text((const char *) data, size, "fuzz", &o, &v, &e) < 0) {
                if (!kverr_is_set(&e) || !e.msg[0])
                        __builtin_trap(); /* every rejection explains itself */
                return 0;
        }
        LaunchNic *nics = NULL;
        size_t n = 0;
        LaunchWarnings w = {};
        if (launch_nics_synthesize(v, &w, &nics, &n) < 0)
                __builtin_trap();
        for (int a = 0; a < 2; a++) {
                LaunchDomainOptions d = { .accel = a ? LAUNCH_ACCEL_KVM : LAUNCH_ACCEL_TCG };
                char *xml = NULL;
                KvErr e2 = {};
                if (launch_domain_xml(v, nics, n, &d, &w, &xml, &e2) < 0)
                        __builtin_trap(); /* a parsed VMI always yields a domain */
                if (!strstr(xml, "</domain>"))
                        __builtin_trap();
                free(xml);
        }
        free(nics);
        launch_warnings_clear(&w);
        launch_vmi_free(v);
        return 0;
}
