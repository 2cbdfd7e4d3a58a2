// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over what crosses the launcher's boundaries: its status file as the node runtime reads it
// (node/pod-status.c node_launcher_status_parse: the guest's launcher writes it, so it is untrusted) and the
// migration messages between a launcher and netd (common/migproto.c: source / activate requests and their
// replies). A refusal must name its reason; nothing may crash or leak. Nothing here touches the kernel.
//
// Build: `make fuzz` -> build/fuzz/fuzz-launcher-proto (sources: FUZZ_SRC_fuzz-launcher-proto in the Makefile).
// Run:   `make fuzz-smoke`; for longer:
//   build/fuzz/fuzz-launcher-proto -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-launcher-proto tests/fuzz/corpus/fuzz-launcher-proto
// Seeds: tests/fuzz/corpus/fuzz-launcher-proto/: a Running and a Failed status, a migration source request, an
//   activate request and replies.
#include <stdint.h>
#include <stdlib.h>

#include "common/migproto.h"
#include "node/pod.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        NodeLauncherStatus st;
        NodeErr ne = {};
        if (node_launcher_status_parse((const char *) data, size, &st, &ne) < 0 && !ne.msg[0])
                __builtin_trap(); /* a refusal without a reason */
        node_err_done(&ne);

        json_error_t je;
        json_t *o = json_loadb((const char *) data, size, 0, &je);
        if (!o)
                return 0;
        KvErr e = {};
        MigSourceMsg sm;
        if (mig_source_msg_from_json(o, &sm, &e) == 0)
                mig_source_msg_done(&sm);
        else if (!e.msg[0])
                __builtin_trap();
        kverr_clear(&e);
        MigActivateMsg am;
        if (mig_activate_msg_from_json(o, &am, &e) == 0)
                mig_activate_msg_done(&am);
        else if (!e.msg[0])
                __builtin_trap();
        kverr_clear(&e);
        MigSourceReply sr;
        if (mig_source_reply_from_json(o, &sr, &e) < 0 && !e.msg[0])
                __builtin_trap();
        kverr_clear(&e);
        MigActivateReply ar;
        if (mig_activate_reply_from_json(o, &ar, &e) < 0 && !e.msg[0])
                __builtin_trap();
        kverr_clear(&e);
        json_decref(o);
        return 0;
}
