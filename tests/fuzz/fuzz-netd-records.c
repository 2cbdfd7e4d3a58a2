// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the records netd reads back from disk or from the cluster: an attachment's record
// (netd/state/endpoint.c endpoint_from_json, as the endpoints journal holds it), an IPAM claim
// (netd/ipam/store.c ipam_claim_from_json, as the claims journal holds it), a network's pool config
// (ipam_config_parse, as pool.json holds it) and a cluster claim (netd/state/claimstore.c
// claimstore_record_from_json, the dir backend's file and the kube backend's NetworkClaim spec). A damaged or
// hostile record must be refused with its reason, never crash or leak; an accepted one must print again.
// Nothing here touches the kernel.
//
// Build: `make fuzz` -> build/fuzz/fuzz-netd-records (sources: FUZZ_SRC_fuzz-netd-records in the Makefile).
// Run:   `make fuzz-smoke`; for longer:
//   build/fuzz/fuzz-netd-records -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-netd-records tests/fuzz/corpus/fuzz-netd-records
// Seeds: tests/fuzz/corpus/fuzz-netd-records/: an endpoint of each kind, a claim, a pool, a cluster claim.
#include <stdint.h>
#include <stdlib.h>

#include "netd/core/netd-priv.h"
#include "netd/ipam/store.h"
#include "netd/state/claimstore-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_error_t je;
        json_t *o = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &je);
        if (!o)
                return 0;
        KvErr e = {};
        Endpoint *ep = NULL;
        if (endpoint_from_json(o, &ep, &e) == 0) {
                json_t *back = endpoint_to_json(ep, true);
                if (!back)
                        __builtin_trap();
                json_decref(back);
                endpoint_free(ep);
        } else if (!e.msg[0])
                __builtin_trap(); /* a refusal without a reason */
        kverr_clear(&e);

        IpamClaim *c = calloc(1, sizeof *c);
        if (!c)
                __builtin_trap();
        if (ipam_claim_from_json(o, "claim", c, &e) < 0 && !e.msg[0])
                __builtin_trap();
        free(c);
        kverr_clear(&e);

        IpamConfig *cfg = calloc(1, sizeof *cfg);
        if (!cfg)
                __builtin_trap();
        if (ipam_config_parse(o, "ipam", cfg, &e) == 0) {
                json_t *canon = ipam_config_to_json(cfg);
                if (!canon)
                        __builtin_trap();
                json_decref(canon);
        } else if (!e.msg[0])
                __builtin_trap();
        free(cfg);
        kverr_clear(&e);

        CsRecord rec; /* fixed-size fields, nothing to free */
        (void) !claimstore_record_from_json(o, &rec);
        json_decref(o);
        return 0;
}
