// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over kube/'s parsers of outside input: the same bytes as a kubeconfig file (YAML or JSON, through
// kube/yaml.c and kube/config.c) and as a watch stream (kube/watch-parse.c) cut in two at a point the first byte
// picks. Neither may crash; a refused kubeconfig names its reason; an accepted one has a server; the stream gives the
// same events whole and cut.
//
// Build: `make fuzz` -> build/fuzz/fuzz-kube (sources: FUZZ_SRC_fuzz-kube in the Makefile).
// Run:   `make fuzz-smoke`, or build/fuzz/fuzz-kube -max_total_time=60 build/fuzz/corpus/fuzz-kube tests/fuzz/corpus/fuzz-kube
// Seeds: tests/fuzz/corpus/fuzz-kube/: a kubeconfig with certificates inline, a JSON one, a watch stream, and what the
// real kube-apiserver v1.37.2 (the test peer) sent: a pods watch stream (ADDED, three MODIFIED, DELETED; managedFields,
// escaped quotes, UTF-8) and a 404 Status body.
#include <stdint.h>
#include <stdio.h>

#include "common/fileio.h"
#include "kube/kube-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(KubeEventType t, json_t *obj, void *userdata) {
        (void) obj;
        ((unsigned *) userdata)[t]++;
        return 0;
}

static int feed(const char *text, size_t size, size_t cut, unsigned n[static _KUBE_EVENT_MAX]) {
        KubeLineParser p = {};
        int r = kube_line_parser_feed(&p, text, cut, count, n, NULL);
        if (r >= 0)
                r = kube_line_parser_feed(&p, text + cut, size - cut, count, n, NULL);
        kube_line_parser_done(&p);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[] = "/tmp/kvnet-fuzz-kube-XXXXXX", path[64];
        if (!path[0]) {
                if (!mkdtemp(dir))
                        __builtin_trap();
                snprintf(path, sizeof path, "%s/kubeconfig", dir);
        }
        if (write_file_atomic(path, data, size, false) < 0)
                __builtin_trap();
        KubeConfig *c = NULL;
        KvErr e = {};
        if (kube_config_from_file(path, NULL, &c, &e) < 0) {
                if (e.msg[0] == '\0' || c)
                        __builtin_trap();
        } else if (!c || !c->server || !c->namespace)
                __builtin_trap();
        kube_config_free(c);

        unsigned whole[_KUBE_EVENT_MAX] = {}, cut[_KUBE_EVENT_MAX] = {};
        size_t at = size ? data[0] % (size + 1) : 0;
        int r1 = feed((const char *) data, size, size, whole), r2 = feed((const char *) data, size, at, cut);
        if ((r1 < 0) != (r2 < 0) || (r1 >= 0 && memcmp(whole, cut, sizeof whole) != 0))
                __builtin_trap();
        return 0;
}
