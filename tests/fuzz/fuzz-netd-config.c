// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over netd's config file (netd/core/manager.c manager_config_parse(): natBackend, durable,
// sriovPools with its pool parser, sysfsRoot, nodeName, clusterClaims with the claim store's config parser,
// routeHook, nodeAddress, redirectGraceMs, multusApi). The input is the whole file as an operator (or a mistake)
// left it.
// Parsing must never crash or leak; every refusal names its reason. Nothing here touches the kernel.
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-netd-config, from the
//   sources listed as FUZZ_SRC_fuzz-netd-config in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-netd-config -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-netd-config tests/fuzz/corpus/fuzz-netd-config
// Seeds: tests/fuzz/corpus/fuzz-netd-config/: a cluster node's config (dir and kube claim stores), SR-IOV pools,
//   and refused ones (unknown key, bad types, out of range).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/fileio.h"
#include "netd/core/netd-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[] = "/tmp/kvnet-fuzz-config-XXXXXX", path[64];
        if (!path[0]) {
                if (!mkdtemp(dir))
                        __builtin_trap();
                snprintf(path, sizeof path, "%s/netd.json", dir);
        }
        if (write_file_atomic(path, data, size, false) < 0)
                __builtin_trap();
        Manager *m = calloc(1, sizeof *m);
        if (!m)
                __builtin_trap();
        m->config_path = path;
        m->redirect_grace_ms = 5000;
        KvErr e = {};
        if (manager_config_parse(m, &e) < 0 && e.msg[0] == '\0' && e.code != 0)
                __builtin_trap(); /* a refusal without a reason */
        /* what manager_free() releases of the config */
        free(m->sriov_pools);
        free(m->sysfs_root);
        free(m->route_hook);
        free(m->api_kubeconfig);
        claimstore_config_done(&m->cs_config);
        free(m);
        return 0;
}
