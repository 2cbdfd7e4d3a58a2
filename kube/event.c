/* SPDX-License-Identifier: Apache-2.0 */
/* Events as client-go's recorder makes them (kube/event.h). Both tables are small arrays searched by hash: the
 * dedup cache (Events posted) and the per-object budgets; when full, the least recently used entry goes. */
#include "kube/event.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json-util.h"
#include "common/tokenbucket.h"

#define DEFAULT_CACHE 4096
#define DEFAULT_BURST 25
#define DEFAULT_REFILL (1.0 / 300.0)
#define REASON_MAX 128
/* metadata.name is a DNS subdomain (253): the object's name part is cut so that ".<16 hex>" fits */
#define NAME_PART_MAX (253 - 17)

typedef struct Posted {
        uint64_t hash, used;
        char *key, *ns, *name;
        int64_t count;
} Posted;

typedef struct Budget {
        uint64_t hash, used;
        char *key;
        KvTokenBucket tb;
} Budget;

struct KubeEventRecorder {
        pthread_mutex_t lock;
        char *component, *host;
        unsigned size, burst;
        double refill;
        uint64_t (*clock_ns)(void *userdata);
        void *clock_data;
        kube_event_write_fn write;
        void *userdata;
        Posted *posted;
        size_t n_posted;
        Budget *budgets;
        size_t n_budgets;
        uint64_t tick, last_ns;
        KubeEventStats stats;
};

static uint64_t realtime_ns(void *userdata) {
        (void) userdata;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

KubeObjectRef kube_object_ref(json_t *obj, const char *api_version, const char *kind) {
        json_t *md = json_object_get(obj, "metadata");
        const char *av = json_string_value(json_object_get(obj, "apiVersion"));
        const char *k = json_string_value(json_object_get(obj, "kind"));
        return (KubeObjectRef){ .api_version = av ? av : api_version,
                                .kind = k ? k : kind,
                                .namespace_ = json_string_value(json_object_get(md, "namespace")),
                                .name = json_string_value(json_object_get(md, "name")),
                                .uid = json_string_value(json_object_get(md, "uid")) };
}

int kube_event_recorder_new(const KubeEventRecorderOpts *o, kube_event_write_fn fn, void *userdata,
                            KubeEventRecorder **ret) {
        if (!o || !o->component || !*o->component || !fn)
                return -EINVAL;
        _cleanup_(kube_event_recorder_freep) KubeEventRecorder *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&r->lock, &a);
        pthread_mutexattr_destroy(&a);
        r->size = o->cache_size ? o->cache_size : DEFAULT_CACHE;
        r->burst = o->burst ? o->burst : DEFAULT_BURST;
        r->refill = o->refill_per_sec ? o->refill_per_sec : DEFAULT_REFILL;
        r->clock_ns = o->clock_ns ? o->clock_ns : realtime_ns;
        r->clock_data = o->clock_data;
        r->write = fn;
        r->userdata = userdata;
        if (!(r->component = strdup(o->component)) || !(r->host = strdup(o->host ? o->host : "")) ||
            !(r->posted = calloc(r->size, sizeof *r->posted)) || !(r->budgets = calloc(r->size, sizeof *r->budgets)))
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}

static void posted_clear(Posted *p) {
        free(p->key);
        free(p->ns);
        free(p->name);
        *p = (Posted){};
}

KubeEventRecorder *kube_event_recorder_free(KubeEventRecorder *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; r->posted && i < r->n_posted; i++)
                posted_clear(&r->posted[i]);
        for (size_t i = 0; r->budgets && i < r->n_budgets; i++)
                free(r->budgets[i].key);
        free(r->posted);
        free(r->budgets);
        free(r->component);
        free(r->host);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

/* The slot to reuse in a full table: the least recently used. */
#define LRU_SLOT(arr, n)                                           \
        ({                                                         \
                size_t _best = 0;                                  \
                for (size_t _i = 1; _i < (n); _i++)                \
                        if ((arr)[_i].used < (arr)[_best].used)    \
                                _best = _i;                        \
                _best;                                             \
        })

static Posted *posted_find(KubeEventRecorder *r, uint64_t hash, const char *key) {
        for (size_t i = 0; i < r->n_posted; i++)
                if (r->posted[i].key && r->posted[i].hash == hash && streq(r->posted[i].key, key))
                        return &r->posted[i];
        return NULL;
}

static Budget *budget_get(KubeEventRecorder *r, const char *key, uint64_t now_us) {
        uint64_t hash = kv_hash64(key, strlen(key));
        for (size_t i = 0; i < r->n_budgets; i++)
                if (r->budgets[i].hash == hash && streq(r->budgets[i].key, key))
                        return &r->budgets[i];
        char *k = strdup(key);
        if (!k)
                return NULL;
        Budget *b = r->n_budgets < r->size ? &r->budgets[r->n_budgets++] : &r->budgets[LRU_SLOT(r->budgets, r->size)];
        free(b->key);
        *b = (Budget){ .hash = hash, .key = k };
        kv_token_bucket_init(&b->tb, r->refill < 0 ? 0 : r->refill, r->burst, now_us);
        return b;
}

static int rfc3339(uint64_t ns, char buf[static 32]) {
        time_t t = (time_t) (ns / 1000000000u);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

/* Bytes that are not UTF-8 (a launcher's reason may carry whatever QEMU or a guest printed) become '?': an API
 * object's strings must be UTF-8, and a message is worth more with a few marks than dropped. */
static void sanitize_utf8(char *m) {
        unsigned char *s = (unsigned char *) m;
        while (*s) {
                size_t n = *s < 0x80 ? 1
                           : (*s & 0xe0) == 0xc0 ? 2
                           : (*s & 0xf0) == 0xe0 ? 3
                           : (*s & 0xf8) == 0xf0 ? 4
                                                 : 0;
                bool ok = n > 0 && !(n == 2 && *s < 0xc2) && !(n == 4 && *s > 0xf4);
                for (size_t i = 1; ok && i < n; i++)
                        ok = (s[i] & 0xc0) == 0x80;
                if (ok && n == 3) /* no overlong forms, no UTF-16 surrogates */
                        ok = !(s[0] == 0xe0 && s[1] < 0xa0) && !(s[0] == 0xed && s[1] >= 0xa0);
                if (ok && n == 4)
                        ok = !(s[0] == 0xf0 && s[1] < 0x90) && !(s[0] == 0xf4 && s[1] >= 0x90);
                if (!ok) {
                        *s++ = '?';
                        continue;
                }
                s += n;
        }
}

/* At most KUBE_EVENT_MESSAGE_MAX bytes, cut before a UTF-8 continuation byte, "..." at the end of a cut one. */
static void clip_message(char *m) {
        size_t n = strlen(m);
        if (n <= KUBE_EVENT_MESSAGE_MAX)
                return;
        size_t cut = KUBE_EVENT_MESSAGE_MAX - 3;
        while (cut > 0 && ((unsigned char) m[cut] & 0xc0) == 0x80)
                cut--;
        memcpy(m + cut, "...", 4);
}

static char *join_key(const KubeEventRecorder *r, const KubeObjectRef *o, const char *type, const char *reason,
                      const char *msg) {
        char *k = NULL;
        /* unit separators: no field can make two keys equal by moving text between fields */
        if (asprintf(&k, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", r->component, r->host,
                     o->api_version ? o->api_version : "", o->kind ? o->kind : "", o->namespace_ ? o->namespace_ : "",
                     o->name, o->uid ? o->uid : "", type ? type : "", reason ? reason : "", msg ? msg : "") < 0)
                return NULL;
        return k;
}

json_t *kube_event_new(const KubeObjectRef *o, const char *component, const char *host, const char *type,
                       const char *reason, const char *message, uint64_t time_ns) {
        char ts[32], name[320];
        if (!o || !o->name || !*o->name || !component || !type || !reason || !message || rfc3339(time_ns, ts) < 0)
                return NULL;
        const char *ns = o->namespace_ && *o->namespace_ ? o->namespace_ : "default";
        snprintf(name, sizeof name, "%.*s.%" PRIx64, NAME_PART_MAX, o->name, time_ns);
        json_t *io = json_object();
        if (!io)
                return NULL;
        /* involvedObject in the order client-go's ObjectReference has its fields */
        if ((o->kind && json_object_set_new(io, "kind", json_string(o->kind)) < 0) ||
            (o->namespace_ && *o->namespace_ && json_object_set_new(io, "namespace", json_string(o->namespace_)) < 0) ||
            json_object_set_new(io, "name", json_string(o->name)) < 0 ||
            (o->uid && *o->uid && json_object_set_new(io, "uid", json_string(o->uid)) < 0) ||
            (o->api_version && json_object_set_new(io, "apiVersion", json_string(o->api_version)) < 0)) {
                json_decref(io);
                return NULL;
        }
        json_t *src = json_pack("{s:s}", "component", component);
        if (src && host && *host && json_object_set_new(src, "host", json_string(host)) < 0)
                json_decref(TAKE_PTR(src));
        if (!src) {
                json_decref(io);
                return NULL;
        }
        return json_pack("{s:s,s:s,s:{s:s,s:s},s:o,s:s,s:s,s:o,s:s,s:s,s:i,s:s,s:n,s:s,s:s}", "apiVersion", "v1",
                         "kind", "Event", "metadata", "name", name, "namespace", ns, "involvedObject", io, "reason",
                         reason, "message", message, "source", src, "firstTimestamp", ts, "lastTimestamp", ts, "count",
                         1, "type", type, "eventTime", "reportingComponent", component, "reportingInstance",
                         host ? host : "");
}

static int record(KubeEventRecorder *r, const KubeObjectRef *o, const char *type, const char *reason, char *msg) {
        int rc;
        sanitize_utf8(msg);
        clip_message(msg);
        _cleanup_free_ char *key = join_key(r, o, type, reason, msg);
        _cleanup_free_ char *okey = join_key(r, o, NULL, NULL, NULL);
        if (!key || !okey)
                return -ENOMEM;
        uint64_t now = r->clock_ns(r->clock_data);
        if (now <= r->last_ns) /* the name carries the time: two Events of one nanosecond still differ */
                now = r->last_ns + 1;
        r->last_ns = now;
        Budget *b = budget_get(r, okey, now / 1000);
        if (!b)
                return -ENOMEM;
        b->used = ++r->tick;
        if (r->refill >= 0 && !kv_token_bucket_take(&b->tb, now / 1000)) {
                r->stats.dropped++;
                return 0;
        }
        uint64_t hash = kv_hash64(key, strlen(key));
        Posted *p = posted_find(r, hash, key);
        if (p) { /* a repeat: its count and lastTimestamp (a new Event's times are kube_event_new()'s) */
                char ts[32];
                if ((rc = rfc3339(now, ts)) < 0)
                        return rc;
                _cleanup_json_ json_t *patch = json_pack("{s:I,s:s}", "count", (json_int_t) p->count + 1,
                                                         "lastTimestamp", ts);
                if (!patch)
                        return -ENOMEM;
                if ((rc = r->write(r->userdata, p->ns, p->name, patch, true)) < 0) {
                        r->stats.failed++;
                        posted_clear(p); /* the slot stays, empty: nothing matches it */
                        return rc;
                }
                p->count++;
                p->used = ++r->tick;
                r->stats.counted++;
                return 2;
        }
        _cleanup_json_ json_t *ev = kube_event_new(o, r->component, r->host, type, reason, msg, now);
        if (!ev)
                return -ENOMEM;
        const char *ns = json_string_value(json_object_get(json_object_get(ev, "metadata"), "namespace"));
        const char *name = json_string_value(json_object_get(json_object_get(ev, "metadata"), "name"));
        if ((rc = r->write(r->userdata, ns, name, ev, false)) < 0) {
                r->stats.failed++;
                return rc;
        }
        r->stats.posted++;
        p = r->n_posted < r->size ? &r->posted[r->n_posted++] : &r->posted[LRU_SLOT(r->posted, r->size)];
        posted_clear(p);
        *p = (Posted){ .hash = hash, .used = ++r->tick, .count = 1, .key = TAKE_PTR(key), .ns = strdup(ns),
                       .name = strdup(name) };
        if (!p->ns || !p->name)
                posted_clear(p); /* posted; only its dedup is lost */
        return 1;
}

int kube_event_record(KubeEventRecorder *r, const KubeObjectRef *obj, const char *type, const char *reason,
                      const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int rc = kube_event_vrecord(r, obj, type, reason, fmt, ap);
        va_end(ap);
        return rc;
}

int kube_event_vrecord(KubeEventRecorder *r, const KubeObjectRef *obj, const char *type, const char *reason,
                       const char *fmt, va_list ap) {
        if (!r)
                return 0;
        if (!obj || !obj->name || !*obj->name || !reason || !*reason || strlen(reason) > REASON_MAX ||
            !(streq_ptr(type, "Normal") || streq_ptr(type, "Warning")) || !fmt)
                return -EINVAL;
        _cleanup_free_ char *msg = NULL;
        int n = vasprintf(&msg, fmt, ap);
        if (n < 0)
                return -ENOMEM;
        pthread_mutex_lock(&r->lock);
        int rc = record(r, obj, type, reason, msg);
        pthread_mutex_unlock(&r->lock);
        return rc;
}

void kube_event_forget(KubeEventRecorder *r, const char *ns, const char *name) {
        if (!r || !ns || !name)
                return;
        pthread_mutex_lock(&r->lock);
        r->stats.failed++;
        for (size_t i = 0; i < r->n_posted; i++)
                if (streq_ptr(r->posted[i].ns, ns) && streq_ptr(r->posted[i].name, name))
                        posted_clear(&r->posted[i]);
        pthread_mutex_unlock(&r->lock);
}

KubeEventStats kube_event_stats(KubeEventRecorder *r) {
        if (!r)
                return (KubeEventStats){};
        pthread_mutex_lock(&r->lock);
        KubeEventStats s = r->stats;
        pthread_mutex_unlock(&r->lock);
        return s;
}

void kube_event_stats_write(FILE *f, const char *name, KubeEventStats st) {
        const struct {
                const char *result;
                uint64_t n;
        } rows[] = { { "posted", st.posted }, { "counted", st.counted }, { "dropped", st.dropped },
                     { "failed", st.failed } };
        fprintf(f, "# HELP %s Kubernetes Events: posted, repeats counted on an earlier one, dropped by the per-object "
                   "budget, writes that failed.\n# TYPE %s counter\n", name, name);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                fprintf(f, "%s{result=\"%s\"} %llu\n", name, rows[i].result, (unsigned long long) rows[i].n);
}
