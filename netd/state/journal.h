/* SPDX-License-Identifier: Apache-2.0 */
/* A crash-safe key -> JSON record store in one file. Every change is one line appended into space the file
 * already owns, so a durable change costs one fdatasync() of a data block: no inode is created, renamed or
 * unlinked and no directory changes (docs/ARCHITECTURE.md, "State on disk"). */
#pragma once

#include <jansson.h>

#include "common/kverr.h"

typedef struct Journal Journal;

/* Opens (creating if absent) the journal at path, replays it and rewrites it compactly. Lines that fail their
 * checksum or do not parse are skipped and counted (journal_bad_records()); the file as it was is then kept as
 * path.corrupt. A file that is not a kvnet journal is an error, never overwritten. durable = false: no fsync at
 * all (tests and benchmarks). */
int journal_open(const char *path, bool durable, Journal **ret, KvErr *e) _wur_;
void journal_free(Journal *j);

/* Sets key to val (the journal takes its own reference). sync: on disk before returning (when durable). */
int journal_put(Journal *j, const char *key, json_t *val, bool sync) _wur_;
/* Removes key: 1 if it was there, 0 if not (nothing written), < 0 on error. */
int journal_del(Journal *j, const char *key, bool sync) _wur_;
/* Makes every earlier change durable (one fdatasync). */
int journal_sync(Journal *j) _wur_;
json_t *journal_get(Journal *j, const char *key); /* borrowed; NULL if absent */

/* Calls cb for every live record in the order the keys were first written; stops at a negative return. */
typedef int (*journal_foreach_cb)(const char *key, json_t *val, void *userdata);
int journal_foreach(Journal *j, journal_foreach_cb cb, void *userdata);

/* Import of state that was kept in files before the journal: calls cb for every "*.json" file of dir (sorted;
 * hidden and ".tmp." files skipped) with its parsed object, or with o NULL and the reason it could not be read
 * (files over max bytes among them).
 * cb returns 1 when the journal holds the file's content (now or already), 0 to leave the file, < 0 to stop.
 * Then the journal is synced, and only after that are the files cb answered 1 for deleted. Returns how many
 * were deleted, or < 0 (nothing deleted). A missing dir imports nothing. */
typedef int (*journal_import_cb)(const char *path, const char *name, json_t *o, const char *err, void *userdata);
int journal_import_files(Journal *j, const char *dir, size_t max, journal_import_cb cb, void *userdata) _wur_;

size_t journal_count(const Journal *j);
unsigned journal_bad_records(const Journal *j);
const char *journal_path(const Journal *j);
/* Bytes the file holds for its records, and the bytes it owns (records + zeroed space for more). */
size_t journal_used_bytes(const Journal *j);
size_t journal_capacity(const Journal *j);
