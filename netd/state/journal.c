/* SPDX-License-Identifier: Apache-2.0 */
/* The journal file: "kvnet-journal 1\n", then one line per change, "<16 hex FNV-1a of the JSON> <JSON>\n" with
 * JSON {"k":key,"v":value} or {"k":key,"del":true}, then zeros up to the size the file owns. A change is written
 * into the zeroed space at the end of the records (and fdatasync()ed when durable); when that space runs out the
 * live records are rewritten into a new file (temp file, fsync, rename, fsync of the directory) with room for as
 * many again. Opening replays the lines in order, stops at the first NUL byte (the unused space), and skips a
 * final line without its newline: a write that a crash cut short was never acknowledged. */
#include "netd/state/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"

#define JOURNAL_MAGIC "kvnet-journal 1\n"
#define JOURNAL_MIN_ROOM ((size_t) 1024 * 1024)
#define JOURNAL_ALIGN ((size_t) 64 * 1024)
#define JOURNAL_FILE_MAX ((size_t) 512 * 1024 * 1024)

typedef struct Rec {
        char *key;
        json_t *val;
        size_t line_len; /* of its line in a rewritten file */
        struct Rec *hnext, *prev, *next;
} Rec;

struct Journal {
        char *path;
        int fd;
        bool durable;
        bool broken; /* a write failed: rewrite the file from memory before the next change */
        size_t off, cap, live_bytes, n, n_buckets;
        Rec **buckets;
        Rec *head, *tail;
        unsigned bad;
        /* what replay() read: the file's length, where its last whole line ends, the bytes of an unfinished
         * change after it */
        size_t file_len, replay_end, replay_tail;
};

static size_t bucket_of(const Journal *j, const char *key) {
        return (size_t) kv_hash64(key, strlen(key)) & (j->n_buckets - 1);
}

static Rec *rec_find(const Journal *j, const char *key) {
        for (Rec *r = j->buckets[bucket_of(j, key)]; r; r = r->hnext)
                if (streq(r->key, key))
                        return r;
        return NULL;
}

static int grow_buckets(Journal *j) {
        size_t nb = j->n_buckets ? j->n_buckets * 2 : 64;
        Rec **b = calloc(nb, sizeof *b);
        if (!b)
                return -ENOMEM;
        free(j->buckets);
        j->buckets = b;
        j->n_buckets = nb;
        for (Rec *r = j->head; r; r = r->next) {
                size_t k = bucket_of(j, r->key);
                r->hnext = b[k];
                b[k] = r;
        }
        return 0;
}

static void rec_free(Rec *r) {
        if (!r)
                return;
        json_decref(r->val);
        free(r->key);
        free(r);
}

static void rec_unlink(Journal *j, Rec *r) {
        Rec **pp = &j->buckets[bucket_of(j, r->key)];
        while (*pp != r)
                pp = &(*pp)->hnext;
        *pp = r->hnext;
        if (r->prev)
                r->prev->next = r->next;
        else
                j->head = r->next;
        if (r->next)
                r->next->prev = r->prev;
        else
                j->tail = r->prev;
        j->n--;
        j->live_bytes -= r->line_len;
}

/* Sets key to val in memory (val: a new reference is taken; NULL removes). */
static int apply(Journal *j, const char *key, json_t *val, size_t line_len) {
        Rec *r = rec_find(j, key);
        if (!val) {
                if (r) {
                        rec_unlink(j, r);
                        rec_free(r);
                }
                return 0;
        }
        if (r) {
                json_decref(r->val);
                r->val = json_incref(val);
                j->live_bytes += line_len - r->line_len;
                r->line_len = line_len;
                return 0;
        }
        if (j->n + 1 > j->n_buckets && grow_buckets(j) < 0)
                return -ENOMEM;
        r = calloc(1, sizeof *r);
        if (!r || !(r->key = strdup(key))) {
                free(r);
                return -ENOMEM;
        }
        r->val = json_incref(val);
        r->line_len = line_len;
        size_t k = bucket_of(j, key);
        r->hnext = j->buckets[k];
        j->buckets[k] = r;
        r->prev = j->tail;
        if (j->tail)
                j->tail->next = r;
        else
                j->head = r;
        j->tail = r;
        j->n++;
        j->live_bytes += line_len;
        return 0;
}

/* "<hash> <json>\n" for a change of key (val NULL: removal). */
static char *format_line(const char *key, json_t *val, size_t *ret_len) {
        _cleanup_json_ json_t *o = val ? json_pack("{s:s, s:O}", "k", key, "v", val)
                                       : json_pack("{s:s, s:b}", "k", key, "del", 1);
        if (!o)
                return NULL;
        _cleanup_free_ char *text = json_dump_compact(o);
        if (!text)
                return NULL;
        size_t n = strlen(text);
        char *line = NULL;
        int k = asprintf(&line, "%016llx %s\n", (unsigned long long) kv_hash64(text, n), text);
        if (k < 0)
                return NULL;
        *ret_len = (size_t) k;
        return line;
}

static int write_all(int fd, const char *p, size_t len, off_t off) {
        while (len > 0) {
                ssize_t w = pwrite(fd, p, len, off);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (w == 0)
                        return -EIO;
                p += w;
                len -= (size_t) w;
                off += w;
        }
        return 0;
}

/* Writes the live records into a new file with room for at least `extra` more bytes and swaps it in. */
static int rewrite(Journal *j, size_t extra) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp", j->path) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        size_t cap = strlen(JOURNAL_MAGIC) + 1, used = strlen(JOURNAL_MAGIC);
        for (Rec *r = j->head; r; r = r->next)
                cap += r->line_len;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, JOURNAL_MAGIC, used);
        for (Rec *r = j->head; r; r = r->next) {
                size_t len;
                _cleanup_free_ char *line = format_line(r->key, r->val, &len);
                if (!line)
                        return -ENOMEM;
                int k = ARRAY_GROW(buf, cap, used + len + 1);
                if (k < 0)
                        return k;
                memcpy(buf + used, line, len);
                used += len;
                j->live_bytes += len - r->line_len;
                r->line_len = len;
        }
        size_t size = used + used + extra + JOURNAL_MIN_ROOM;
        size = (size + JOURNAL_ALIGN - 1) / JOURNAL_ALIGN * JOURNAL_ALIGN;

        _cleanup_close_ int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        int r = write_all(fd, buf, used, 0);
        /* Zeros written for real (not a hole, not fallocate's unwritten extents): later changes then only
         * overwrite data blocks the file already has, and fdatasync() has no metadata to write. */
        static const char zeros[64 * 1024];
        for (size_t o = used; r >= 0 && o < size; o += sizeof zeros) {
                size_t n = size - o < sizeof zeros ? size - o : sizeof zeros;
                r = write_all(fd, zeros, n, (off_t) o);
        }
        if (r >= 0 && j->durable && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, j->path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        if (j->durable && (r = fsync_parent(j->path)) < 0)
                return r; /* the new file is in place; only its name's durability is in doubt */
        if (j->fd >= 0)
                close(j->fd);
        j->fd = TAKE_FD(fd);
        j->off = used;
        j->cap = size;
        j->broken = false;
        return 0;
}

static int append(Journal *j, const char *line, size_t len, bool sync) {
        int r;
        if (j->broken || j->off + len > j->cap) {
                r = rewrite(j, len);
                if (r < 0)
                        return r;
        }
        r = write_all(j->fd, line, len, (off_t) j->off);
        if (r >= 0 && sync && j->durable && fdatasync(j->fd) < 0)
                r = negative_errno();
        if (r < 0) {
                /* The line may be partly on disk: the next change rewrites the file from memory, which does not
                 * have this one. */
                j->broken = true;
                return r;
        }
        j->off += len;
        return 0;
}

/* Writes the change (val NULL: removal of key) and then applies it in memory. */
static int change(Journal *j, const char *key, json_t *val, bool sync) {
        size_t len;
        _cleanup_free_ char *line = format_line(key, val, &len);
        if (!line)
                return -ENOMEM;
        int r = append(j, line, len, sync);
        if (r < 0)
                return r;
        return apply(j, key, val, len);
}

int journal_put(Journal *j, const char *key, json_t *val, bool sync) {
        return val ? change(j, key, val, sync) : -EINVAL;
}

int journal_del(Journal *j, const char *key, bool sync) {
        if (!rec_find(j, key))
                return 0;
        int r = change(j, key, NULL, sync);
        return r < 0 ? r : 1;
}

int journal_sync(Journal *j) {
        if (!j->durable)
                return 0;
        if (j->broken)
                return rewrite(j, 0);
        return fdatasync(j->fd) < 0 ? negative_errno() : 0;
}

json_t *journal_get(Journal *j, const char *key) {
        Rec *r = rec_find(j, key);
        return r ? r->val : NULL;
}

int journal_foreach(Journal *j, journal_foreach_cb cb, void *userdata) {
        for (Rec *r = j->head, *next; r; r = next) {
                next = r->next; /* cb may delete its own record */
                int k = cb(r->key, r->val, userdata);
                if (k < 0)
                        return k;
        }
        return 0;
}

size_t journal_count(const Journal *j) {
        return j->n;
}

unsigned journal_bad_records(const Journal *j) {
        return j->bad;
}

const char *journal_path(const Journal *j) {
        return j->path;
}

size_t journal_used_bytes(const Journal *j) {
        return j->off;
}

size_t journal_capacity(const Journal *j) {
        return j->cap;
}

static int import_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && !strstr(d->d_name, ".tmp.") && n > 5 && streq(d->d_name + n - 5, ".json");
}

int journal_import_files(Journal *j, const char *dir, size_t max, journal_import_cb cb, void *userdata) {
        struct dirent **names = NULL;
        int n = scandir(dir, &names, import_filter, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : negative_errno();
        int r = 0, imported = 0;
        _cleanup_free_ bool *done = calloc((size_t) n + 1, sizeof *done);
        if (!done)
                r = -ENOMEM;
        char path[PATH_MAX];
        for (int k = 0; k < n && r >= 0; k++) {
                if (snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name) >= (int) sizeof path)
                        continue;
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                _cleanup_json_ json_t *o = NULL;
                KvErr e = {};
                int q = read_file_max(path, max, &text, &len);
                if (q < 0)
                        snprintf(e.msg, sizeof e.msg, "cannot read: %s", strerror(-q));
                else
                        (void) !json_parse_object(text, len, max, "file", &o, &e);
                r = cb(path, names[k]->d_name, o, o ? NULL : e.msg, userdata);
                if (r > 0) {
                        done[k] = true;
                        imported++;
                }
        }
        if (r >= 0 && imported > 0)
                r = journal_sync(j);
        for (int k = 0; k < n; k++) {
                if (r >= 0 && done[k] && snprintf(path, sizeof path, "%s/%s", dir, names[k]->d_name) < (int) sizeof path)
                        (void) unlink(path);
                free(names[k]);
        }
        free(names);
        if (r < 0)
                return r;
        if (imported > 0)
                IGNORE_RESULT(fsync_dir(dir));
        return imported;
}

/* One line (without its newline): 0 applied, -EBADMSG bad, -ENOMEM. */
static int replay_line(Journal *j, const char *p, size_t len) {
        if (len < 18 || p[16] != ' ')
                return -EBADMSG;
        char hex[17];
        memcpy(hex, p, 16);
        hex[16] = '\0';
        char *end;
        errno = 0;
        unsigned long long h = strtoull(hex, &end, 16);
        if (errno || *end || h != kv_hash64(p + 17, len - 17))
                return -EBADMSG;
        _cleanup_json_ json_t *o = json_loadb(p + 17, len - 17, JSON_REJECT_DUPLICATES, NULL);
        const char *key = json_string_value(json_object_get(o, "k"));
        json_t *v = json_object_get(o, "v");
        if (!key || !*key || (!v && !json_is_true(json_object_get(o, "del"))))
                return -EBADMSG;
        return apply(j, key, v, len + 1);
}

static int replay(Journal *j, KvErr *e) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = read_file_max(j->path, JOURNAL_FILE_MAX, &data, &len);
        if (r == -ENOENT || (r >= 0 && len == 0))
                return 0; /* new, or created by a run that stopped before its first rewrite finished */
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "journal %s: cannot read it", j->path);
        size_t ml = strlen(JOURNAL_MAGIC);
        if (len < ml || memcmp(data, JOURNAL_MAGIC, ml) != 0)
                return kverr_set(e, KV_ERR_IO, -EBADMSG,
                                 "journal %s: not a kvnet journal (its first line is not '%.*s'); left as it is",
                                 j->path, (int) ml - 1, JOURNAL_MAGIC);
        const char *p = data + ml, *end = data + len;
        j->file_len = len;
        while (p < end && *p != '\0') {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                if (!nl) {
                        log_notice("journal %s: ignoring an unfinished last change (%zu bytes)", j->path,
                                   (size_t) (end - p));
                        j->replay_tail = strnlen(p, (size_t) (end - p));
                        break;
                }
                r = replay_line(j, p, (size_t) (nl - p));
                if (r == -ENOMEM)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "journal %s: out of memory", j->path);
                if (r < 0)
                        j->bad++;
                p = nl + 1;
        }
        j->replay_end = (size_t) (p - data);
        if (j->bad > 0) {
                char keep[PATH_MAX];
                if (snprintf(keep, sizeof keep, "%s.corrupt", j->path) < (int) sizeof keep &&
                    write_file_atomic(keep, data, len, j->durable) >= 0)
                        log_warning("journal %s: skipped %u damaged change(s); the file as it was is kept as %s",
                                    j->path, j->bad, keep);
                else
                        log_warning("journal %s: skipped %u damaged change(s)", j->path, j->bad);
        }
        return 0;
}

/* journal_open() found no room for the compacted copy (a full disk): a clean file (every line whole and good)
 * is kept as it is and changes go after its last line, into the zeroed room it already owns, so that a full
 * disk does not keep netd from starting. An unfinished last change is zeroed (blocks the file has). */
static int reuse(Journal *j) {
        if (j->bad > 0 || j->file_len == 0)
                return -ENOSPC;
        _cleanup_close_ int fd = open(j->path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if ((size_t) st.st_size != j->file_len || j->replay_end + j->replay_tail > j->file_len)
                return -ESTALE;
        static const char zeros[4096];
        int r = 0;
        for (size_t o = j->replay_end; r >= 0 && o < j->replay_end + j->replay_tail; o += sizeof zeros) {
                size_t n = j->replay_end + j->replay_tail - o;
                r = write_all(fd, zeros, n < sizeof zeros ? n : sizeof zeros, (off_t) o);
        }
        if (r >= 0 && j->durable && fdatasync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                return r;
        j->fd = TAKE_FD(fd);
        j->off = j->replay_end;
        j->cap = j->file_len;
        j->broken = false;
        return 0;
}

int journal_open(const char *path, bool durable, Journal **ret, KvErr *e) {
        Journal *j = calloc(1, sizeof *j);
        if (!j || !(j->path = strdup(path)) || grow_buckets(j) < 0) {
                journal_free(j);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "journal %s: out of memory", path);
        }
        j->fd = -1;
        j->durable = durable;
        int r = replay(j, e);
        if (r >= 0) {
                r = rewrite(j, 0);
                if ((r == -ENOSPC || r == -EDQUOT) && reuse(j) >= 0) {
                        log_warning("journal %s: no space for its compacted copy (%s): changes go after its last "
                                    "record (%zu bytes of room)", path, strerror(-r), j->cap - j->off);
                        r = 0;
                }
                if (r < 0)
                        kverr_set_errno(e, KV_ERR_IO, r, "journal %s: cannot write it", path);
        }
        if (r < 0) {
                journal_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

void journal_free(Journal *j) {
        if (!j)
                return;
        for (Rec *r = j->head, *next; r; r = next) {
                next = r->next;
                rec_free(r);
        }
        if (j->fd >= 0)
                close(j->fd);
        free(j->buckets);
        free(j->path);
        free(j);
}
