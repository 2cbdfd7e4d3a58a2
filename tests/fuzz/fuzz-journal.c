// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over netd's journal replay (netd/state/journal.c): the input is the whole file as a crash, a bad
// disk or a person may have left it. Opening must never crash; when it succeeds, the rewritten file must replay
// to the same records with nothing damaged.
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-journal, from the
//   sources listed as FUZZ_SRC_fuzz-journal in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-journal -max_total_time=60 -max_len=4096 build/fuzz/corpus/fuzz-journal tests/fuzz/corpus/fuzz-journal
// Seeds: tests/fuzz/corpus/fuzz-journal/: an empty journal, one with puts and a removal, one with a torn last line.
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "common/fileio.h"
#include "netd/state/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char dir[] = "/tmp/kvnet-fuzz-journal-XXXXXX", path[64], keep[80];
        if (!path[0]) {
                if (!mkdtemp(dir))
                        __builtin_trap();
                snprintf(path, sizeof path, "%s/j", dir);
                snprintf(keep, sizeof keep, "%s/j.corrupt", dir);
        }
        unlink(keep);
        if (write_file_atomic(path, data, size, false) < 0)
                __builtin_trap();
        Journal *j = NULL;
        KvErr e = {};
        if (journal_open(path, false, &j, &e) < 0) {
                if (e.msg[0] == '\0') /* every refusal names its reason */
                        __builtin_trap();
                return 0;
        }
        size_t n = journal_count(j);
        journal_free(j);
        if (journal_open(path, false, &j, &e) < 0 || journal_count(j) != n || journal_bad_records(j) != 0)
                __builtin_trap();
        journal_free(j);
        return 0;
}
