// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over kube/'s parsers of outside input: the same bytes as a kubeconfig file (YAML or JSON, through
// kube/yaml.c and kube/config.c) and as a watch stream (kube/watch-parse.c) cut in two at a point the first byte
// picks, and as one page of a LIST answer (kube/list.c). None may crash; a refused kubeconfig names its reason; an
// accepted one has a server; the stream gives the same events whole and cut; a page adds exactly its items or,
// refused, nothing, and the same page asked for with its own continue token is refused (a server looping).
//
// Build: `make fuzz` -> build/fuzz/fuzz-kube (sources: FUZZ_SRC_fuzz-kube in the Makefile).
// Run:   `make fuzz-smoke`, or build/fuzz/fuzz-kube -max_total_time=60 build/fuzz/corpus/fuzz-kube tests/fuzz/corpus/fuzz-kube
// Seeds: tests/fuzz/corpus/fuzz-kube/: a kubeconfig with certificates inline, a JSON one, a watch stream, and what the
// real kube-apiserver v1.37.2 (the test peer) sent: a pods watch stream (ADDED, three MODIFIED, DELETED; managedFields,
// escaped quotes, UTF-8), a 404 Status body, and two pages of a pods list asked for with limit=2 (the first with a
// continue token and remainingItemCount, the last without).
#include <stdint.h>
#include <stdio.h>

#include "common/fileio.h"
#include "common/json-util.h"
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

        json_t *page = NULL;
        if (json_parse_object((const char *) data, size, 1 << 20, "fuzz page", &page, &e) == 0) {
                json_t *acc = json_array();
                const char *cont = NULL;
                KvErr pe = {};
                size_t want = json_array_size(json_object_get(page, "items"));
                if (!acc)
                        __builtin_trap();
                if (kube_list_page(page, &acc, NULL, &cont, "fuzz", &pe) == 0) {
                        if (json_array_size(acc) != want || (cont && !*cont))
                                __builtin_trap();
                        if (cont) {
                                _cleanup_free_ char *prev = strdup(cont);
                                KvErr le = {};
                                if (!prev || kube_list_page(page, &acc, prev, &cont, "fuzz", &le) != -ELOOP ||
                                    json_array_size(acc) != want)
                                        __builtin_trap();
                        }
                } else if (!pe.msg[0] || cont || json_array_size(acc) != 0)
                        __builtin_trap();
                json_decref(acc);
                json_decref(page);
        }

        unsigned whole[_KUBE_EVENT_MAX] = {}, cut[_KUBE_EVENT_MAX] = {};
        size_t at = size ? data[0] % (size + 1) : 0;
        int r1 = feed((const char *) data, size, size, whole), r2 = feed((const char *) data, size, at, cut);
        if ((r1 < 0) != (r2 < 0) || (r1 >= 0 && memcmp(whole, cut, sizeof whole) != 0))
                __builtin_trap();
        return 0;
}
