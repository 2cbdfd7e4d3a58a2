/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet live migration through libvirt: typed parameters, virDomainMigrateToURI3 with a watchdog,
 * completed job statistics (migration/migrate.h, docs/migration.md). Library code: no logging. */
#include "migration/migrate.h"

#include <libvirt/virterror.h>
#include <pthread.h>
#include <time.h>

#include "common/json-util.h"

static const char *const known_keys[] = {
        "destUri",        "migrateUri",     "tunnelled",     "maxDowntimeMs",
        "bandwidthMiBps", "timeoutSeconds", "destSerialLog", "destStateDir",
};

/* A path that goes into the destination domain XML as is. */
static int check_path(const char *ctx, const char *key, const char *s, size_t max, KvErr *e) {
        if (s[0] != '/' || strlen(s) >= max || strpbrk(s, "\n\r\t'\"<>&"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: '%s' must be an absolute path (< %zu characters) without quotes or markup, "
                                 "got '%.256s'",
                                 ctx, key, max, s);
        return 0;
}

static int check_uri(const char *ctx, const char *key, const char *s, KvErr *e) {
        size_t len = strlen(s);
        if (len == 0 || len >= KV_MIGRATE_MAX_URI)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' must be 1..%d characters, got %zu",
                                 ctx, key, KV_MIGRATE_MAX_URI - 1, len);
        for (const char *c = s; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: '%s' must not contain spaces or control characters, got '%.128s'", ctx,
                                         key, s);
        return 0;
}

void kv_migrate_params_done(KvMigrateParams *p) {
        if (!p)
                return;
        free(p->dest_uri);
        free(p->migrate_uri);
        free(p->dest_serial_log);
        free(p->dest_state_dir);
        free(p->dest_xml);
        *p = (KvMigrateParams){};
}

void kv_migrate_params_set_dest_xml(KvMigrateParams *p, char *xml) {
        free(p->dest_xml);
        p->dest_xml = xml;
}

int kv_migrate_params_parse(json_t *obj, const char *ctx, KvMigrateParams *ret, KvErr *e) {
        KvMigrateParams p = { .tunnelled = true, .timeout_s = KV_MIGRATE_DEFAULT_TIMEOUT_S };
        const char *dest = NULL, *muri = NULL, *serial = NULL, *sdir = NULL;
        long long v;
        int r;

        if (!json_is_object(obj))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", ctx,
                                 obj ? json_type_name(obj) : "nothing");
        const char *key;
        json_t *val;
        json_object_foreach(obj, key, val) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(known_keys); i++)
                        if (streq(key, known_keys[i]))
                                known = true;
                if (!known)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: unknown field '%.64s' (known: destUri, migrateUri, tunnelled, "
                                         "maxDowntimeMs, bandwidthMiBps, timeoutSeconds, destSerialLog, destStateDir)",
                                         ctx, key);
        }
        if ((r = json_get_string(obj, ctx, "destUri", true, &dest, e)) < 0)
                return r;
        if ((r = check_uri(ctx, "destUri", dest, e)) < 0)
                return r;
        if (!strstr(dest, "://") || !strstr(dest, "/system"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'destUri' must be a libvirt URI like qemu+unix:///system?socket=PATH, got '%s'",
                                 ctx, dest);
        if ((r = json_get_string(obj, ctx, "migrateUri", false, &muri, e)) < 0)
                return r;
        if (muri && (r = check_uri(ctx, "migrateUri", muri, e)) < 0)
                return r;
        if ((r = json_get_bool(obj, ctx, "tunnelled", false, &p.tunnelled, e)) < 0)
                return r;
        if (muri && p.tunnelled)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'migrateUri' ('%s') needs 'tunnelled': false (a tunnelled migration sends "
                                 "its data over the libvirt connection)",
                                 ctx, muri);
        r = json_get_int(obj, ctx, "maxDowntimeMs", false, 1, 600000, &v, e);
        if (r < 0)
                return r;
        if (r > 0)
                p.max_downtime_ms = (uint32_t) v;
        r = json_get_int(obj, ctx, "bandwidthMiBps", false, 0, 1048576, &v, e);
        if (r < 0)
                return r;
        if (r > 0)
                p.bandwidth_mibps = (uint64_t) v;
        r = json_get_int(obj, ctx, "timeoutSeconds", false, 1, 86400, &v, e);
        if (r < 0)
                return r;
        if (r > 0)
                p.timeout_s = (uint32_t) v;
        if ((r = json_get_string(obj, ctx, "destSerialLog", false, &serial, e)) < 0)
                return r;
        if (serial && (r = check_path(ctx, "destSerialLog", serial, 4096, e)) < 0)
                return r;
        if ((r = json_get_string(obj, ctx, "destStateDir", false, &sdir, e)) < 0)
                return r;
        /* room for "/<namespace>_<name>/<volume>-cidata.iso" below it */
        if (sdir && (r = check_path(ctx, "destStateDir", sdir, KV_MIGRATE_MAX_STATE_DIR, e)) < 0)
                return r;

        p.dest_uri = strdup(dest);
        p.migrate_uri = muri ? strdup(muri) : NULL;
        p.dest_serial_log = serial ? strdup(serial) : NULL;
        if (sdir) {
                /* "/run/x/" and "/run/x" are the same directory; "/" stays "/" */
                size_t l = strlen(sdir);
                while (l > 1 && sdir[l - 1] == '/')
                        l--;
                p.dest_state_dir = strndup(sdir, l);
        }
        if (!p.dest_uri || (muri && !p.migrate_uri) || (serial && !p.dest_serial_log) || (sdir && !p.dest_state_dir)) {
                kv_migrate_params_done(&p);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        *ret = p;
        return 0;
}

json_t *kv_migrate_params_to_json(const KvMigrateParams *p) {
        json_t *o = json_pack("{s:s, s:b, s:I, s:I}", "destUri", p->dest_uri ? p->dest_uri : "", "tunnelled",
                              p->tunnelled, "bandwidthMiBps", (json_int_t) p->bandwidth_mibps, "timeoutSeconds",
                              (json_int_t) p->timeout_s);
        if (!o)
                return NULL;
        if ((p->migrate_uri && json_object_set_new(o, "migrateUri", json_string(p->migrate_uri)) < 0) ||
            (p->max_downtime_ms && json_object_set_new(o, "maxDowntimeMs", json_integer(p->max_downtime_ms)) < 0) ||
            (p->dest_serial_log && json_object_set_new(o, "destSerialLog", json_string(p->dest_serial_log)) < 0) ||
            (p->dest_state_dir && json_object_set_new(o, "destStateDir", json_string(p->dest_state_dir)) < 0)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int kv_migrate_params_build(const KvMigrateParams *p, virTypedParameterPtr *ret_params, int *ret_n,
                            unsigned int *ret_flags) {
        virTypedParameterPtr params = NULL;
        int n = 0, max = 0;

        if (!p->dest_uri)
                return -EINVAL;
        /* virTypedParams* reset libvirt's thread-local error: the library must be initialised
         * (idempotent; a connection does it too). */
        if (virInitialize() < 0)
                return -EIO;
        if (p->migrate_uri && virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_URI, p->migrate_uri) < 0)
                goto fail;
        if (p->dest_xml && virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_DEST_XML, p->dest_xml) < 0)
                goto fail;
        if (p->bandwidth_mibps > 0 &&
            virTypedParamsAddULLong(&params, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH, p->bandwidth_mibps) < 0)
                goto fail;
        *ret_params = params;
        *ret_n = n;
        *ret_flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | (p->tunnelled ? VIR_MIGRATE_TUNNELLED : 0) |
                     (p->storage_checked ? VIR_MIGRATE_UNSAFE : 0);
        return 0;
fail:
        virTypedParamsFree(params, n);
        return -ENOMEM;
}

int kv_migrate_stats_from_params(virTypedParameterPtr params, int n, KvMigrateResult *r) {
        unsigned long long v;
        int found = 0;
        if (virInitialize() < 0)
                return 0;
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1) {
                r->total_ms = v;
                found = 1;
        }
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1) {
                r->downtime_ms = v;
                found = 1;
        }
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1)
                r->data_bytes = v;
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v) == 1)
                r->memory_iterations = v;
        if (found)
                r->have_stats = true;
        return found;
}

/* ------------------------------------------------------------------ watchdog */

typedef struct Watchdog {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        bool fired;
        uint32_t timeout_s;
        virDomainPtr dom;
} Watchdog;

static void *watchdog_main(void *arg) {
        Watchdog *w = arg;
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += w->timeout_s;
        pthread_mutex_lock(&w->lock);
        while (!w->done) {
                if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) == ETIMEDOUT && !w->done) {
                        w->fired = true;
                        pthread_mutex_unlock(&w->lock);
                        /* Repeated: an abort that arrives before QEMU's job exists is refused. */
                        for (int i = 0; i < 50; i++) {
                                if (virDomainAbortJob(w->dom) == 0)
                                        break;
                                struct timespec ts = { .tv_nsec = 200 * 1000 * 1000 };
                                nanosleep(&ts, NULL);
                                pthread_mutex_lock(&w->lock);
                                bool d = w->done;
                                pthread_mutex_unlock(&w->lock);
                                if (d)
                                        break;
                        }
                        return NULL;
                }
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int kv_migrate_run(virDomainPtr dom, const KvMigrateParams *p, KvMigrateResult *ret) {
        KvMigrateResult res = {};
        virTypedParameterPtr params = NULL;
        int n = 0, r;
        unsigned int flags = 0;

        if (p->max_downtime_ms > 0 && virDomainMigrateSetMaxDowntime(dom, p->max_downtime_ms, 0) < 0) {
                snprintf(res.error, sizeof res.error, "set max downtime %u ms: %s", p->max_downtime_ms,
                         virGetLastErrorMessage());
                *ret = res;
                return -EIO;
        }
        r = kv_migrate_params_build(p, &params, &n, &flags);
        if (r < 0) {
                snprintf(res.error, sizeof res.error, "build migration parameters: %s", strerror(-r));
                *ret = res;
                return r;
        }

        Watchdog w = { .timeout_s = p->timeout_s, .dom = dom };
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_t tid;
        bool have_watchdog = pthread_create(&tid, NULL, watchdog_main, &w) == 0;

        uint64_t t0 = mono_ms();
        int mr = virDomainMigrateToURI3(dom, p->dest_uri, params, (unsigned) n, flags);
        res.wall_ms = mono_ms() - t0;
        if (mr < 0)
                snprintf(res.error, sizeof res.error, "%s", virGetLastErrorMessage());

        pthread_mutex_lock(&w.lock);
        w.done = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.lock);
        if (have_watchdog)
                pthread_join(tid, NULL);
        res.timed_out = w.fired;
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.lock);
        virTypedParamsFree(params, n);

        if (mr < 0) {
                if (res.timed_out) {
                        char msg[sizeof res.error + 64];
                        snprintf(msg, sizeof msg, "timed out after %u s and aborted: %s", p->timeout_s, res.error);
                        snprintf(res.error, sizeof res.error, "%.*s", (int) sizeof res.error - 1, msg);
                }
                *ret = res;
                return res.timed_out ? -ETIMEDOUT : -EIO;
        }
        res.ok = true;
        /* A transient domain that migrated away is gone from the source: then the caller takes the
         * statistics from the JOB_COMPLETED event. */
        virTypedParameterPtr st = NULL;
        int ns = 0, type = 0;
        if (virDomainGetJobStats(dom, &type, &st, &ns, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
                kv_migrate_stats_from_params(st, ns, &res);
                virTypedParamsFree(st, ns);
        } else
                virResetLastError();
        *ret = res;
        return 0;
}

json_t *kv_migrate_result_to_json(const KvMigrateResult *r) {
        json_t *o = json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I}", "ok", r->ok, "stats", r->have_stats,
                              "timedOut", r->timed_out, "totalMs", (json_int_t) r->total_ms, "downtimeMs",
                              (json_int_t) r->downtime_ms, "dataBytes", (json_int_t) r->data_bytes,
                              "memoryIterations", (json_int_t) r->memory_iterations, "wallMs",
                              (json_int_t) r->wall_ms);
        if (!o)
                return NULL;
        if (json_object_set_new(o, "error", r->error[0] ? json_string(r->error) : json_null()) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}
