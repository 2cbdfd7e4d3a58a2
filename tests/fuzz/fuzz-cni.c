// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the CNI plugin's parsers: CNI_ARGS, the network config (with prevResult,
// runtimeConfig, cni.dev/valid-attachments), results of any version, and what is built from them.
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-cni, from the
//   sources listed as FUZZ_SRC_fuzz-cni in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-cni -max_total_time=60 -max_len=8192 build/fuzz/corpus/fuzz-cni tests/fuzz/corpus/fuzz-cni
// Seeds: tests/fuzz/corpus/fuzz-cni/: the command byte (0 ADD, 1 DEL, 2 CHECK, 3 STATUS, 4 GC; bit 7: no netns), CNI_ARGS, NUL, a config from tests/data/cni/.
//
// Input layout: byte 0 selects the command (ADD, DEL, CHECK, STATUS, GC); the rest is
// "<CNI_ARGS>\0<netconf JSON>" (no NUL: everything is the JSON, CNI_ARGS empty). Nothing here
// talks to netd.
#include <stdint.h>

#include "cni/cni.h"
#include "common/json-util.h"

static void exercise_result(const CniResult *res) {
        for (size_t i = 0; cni_supported_versions[i]; i++) {
                json_t *o = NULL;
                if (cni_result_to_json(res, cni_supported_versions[i], &o) < 0)
                        __builtin_trap();
                /* what we emit must parse back */
                CniResult *again = NULL;
                KvErr e = {};
                if (cni_result_parse(o, "again", NULL, &again, &e) < 0)
                        __builtin_trap();
                cni_result_free(again);
                json_decref(o);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        static const CniCommand cmds[] = { CNI_CMD_ADD, CNI_CMD_DEL, CNI_CMD_CHECK, CNI_CMD_STATUS, CNI_CMD_GC };
        CniEnv env = { .command = cmds[data[0] % ELEMENTSOF(cmds)] };
        if (env.command != CNI_CMD_STATUS && env.command != CNI_CMD_GC) {
                env.container_id = "c1";
                env.ifname = "eth0";
                env.netns = data[0] & 0x80 ? NULL : "/var/run/netns/x";
        }
        data++;
        size--;

        const uint8_t *nul = memchr(data, 0, size);
        char *args_text = strndup((const char *) data, nul ? (size_t) (nul - data) : 0);
        const char *json = nul ? (const char *) nul + 1 : (const char *) data;
        size_t json_len = nul ? size - (size_t) (nul - data) - 1 : size;
        if (!args_text)
                return 0;

        CniArgs args = {};
        KvErr e = {};
        if (cni_args_parse(args_text, &args, &e) >= 0) {
                CniNetConf *conf = NULL;
                kverr_clear(&e);
                if (cni_netconf_parse(json, json_len, &env, &args, &conf, &e) >= 0) {
                        const char *op = NULL;
                        json_t *req = NULL;
                        if (cni_request_build(&env, conf, &op, &req) < 0)
                                __builtin_trap();
                        char *s = json_dump_compact(req);
                        free(s);
                        json_decref(req);
                        if (conf->prev_result)
                                exercise_result(conf->prev_result);
                        cni_netconf_free(conf);
                } else if (e.code == 0)
                        __builtin_trap(); /* every failure must say why */
        }
        cni_args_done(&args);
        free(args_text);

        /* The same bytes as a result object (what netd returns, or a prevResult). */
        json_t *o = json_loadb(json, json_len, 0, NULL);
        if (o) {
                CniResult *res = NULL;
                KvErr re = {};
                if (cni_result_parse(o, "result", "1.1.0", &res, &re) >= 0) {
                        exercise_result(res);
                        cni_result_free(res);
                }
                json_decref(o);
        }
        return 0;
}
