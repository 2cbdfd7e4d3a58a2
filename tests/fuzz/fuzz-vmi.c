// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over kvnet-launcher's input path: YAML/JSON text -> libyaml -> jansson ->
// LaunchVmi (all checks) -> synthesized NICs -> domain XML (both accel types).
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-vmi, from the
//   sources listed as FUZZ_SRC_fuzz-vmi in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-vmi -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-vmi tests/fuzz/corpus/fuzz-vmi
// Seeds: tests/fuzz/corpus/fuzz-vmi/: launcher fixtures from tests/data/launcher/.
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
