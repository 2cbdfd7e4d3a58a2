/* SPDX-License-Identifier: Apache-2.0 */
/* kube/event: core v1 Events as client-go's event recorder makes them (docs/events.md), without a transport: the
 * caller gives the function that writes them (the controller: its store, embedded or mirrored; kvnet-node: its API
 * client on its loop).
 *
 *   shape       an Event named "<object>.<hex nanoseconds>" in the object's namespace ("default" for a
 *               cluster-scoped one), involvedObject the object (apiVersion, kind, namespace, name, uid), source and
 *               reportingComponent the recorder's component, reportingInstance and source.host its host;
 *   dedup       an Event equal to one recorded before (same object, type, reason, message) is not posted again: the
 *               earlier one's count goes up and its lastTimestamp moves (a merge patch), as client-go's
 *               EventCorrelator does; the recorder keeps the last `cache_size` Events it posted;
 *   spam filter each object gets a token bucket (client-go's defaults: a burst of 25, then one every 5 minutes):
 *               what exceeds it is dropped and counted, never queued without bound;
 *   best effort a write that fails is logged by the writer and forgotten (kube_event_forget()): an Event never
 *               changes the outcome of what it tells about.
 *
 * Thread-safe: one mutex (the controller records from its reconcile passes, which may run on a thread). */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"

/* What an Event is about; every string borrowed. namespace_ NULL or "": a cluster-scoped object. */
typedef struct KubeObjectRef {
        const char *api_version, *kind, *namespace_, *name, *uid;
} KubeObjectRef;

/* The reference to obj (its apiVersion, kind, metadata.namespace/name/uid, borrowed from obj). kind and api_version
 * default to the given ones when obj has none (the store's objects always have them). */
KubeObjectRef kube_object_ref(json_t *obj, const char *api_version, const char *kind);

/* The Event object itself, as client-go's recorder makes it: named "<name>.<hex time_ns>" (the object's name cut to
 * keep it a DNS subdomain) in the object's namespace ("default" for a cluster-scoped one), first = last timestamp
 * (time_ns, nanoseconds since the epoch), count 1; host NULL or "" leaves source.host out (reportingInstance "").
 * New reference; NULL when a field is missing (obj->name, type, reason, message, component) or out of memory. */
json_t *kube_event_new(const KubeObjectRef *obj, const char *component, const char *host, const char *type,
                       const char *reason, const char *message, uint64_t time_ns);

/* The writer: create (patch false: body is the whole Event, name its metadata.name) or patch (patch true: body is
 * a JSON merge patch of the Event ns/name). Returns < 0 when the write failed at once (the recorder forgets the
 * Event); an asynchronous writer that fails later calls kube_event_forget(). body is borrowed. */
typedef int (*kube_event_write_fn)(void *userdata, const char *ns, const char *name, json_t *body, bool patch);

typedef struct KubeEventRecorderOpts {
        const char *component; /* "kvnet-controller", "kvnet-node", ... (required) */
        const char *host;      /* the node or instance, NULL/"" none */
        unsigned cache_size;   /* Events remembered for dedup; 0: 4096 */
        unsigned burst;        /* per object; 0: 25 */
        double refill_per_sec; /* per object; 0: 1/300 (one every 5 minutes); < 0: never limit */
        /* tests: the clock, nanoseconds since the epoch; NULL: CLOCK_REALTIME */
        uint64_t (*clock_ns)(void *userdata);
        void *clock_data;
} KubeEventRecorderOpts;

typedef struct KubeEventRecorder KubeEventRecorder;

typedef struct KubeEventStats {
        uint64_t posted;  /* new Events written */
        uint64_t counted; /* repeats: count raised on an earlier Event */
        uint64_t dropped; /* over an object's budget */
        uint64_t failed;  /* writes that failed */
} KubeEventStats;

int kube_event_recorder_new(const KubeEventRecorderOpts *o, kube_event_write_fn fn, void *userdata,
                            KubeEventRecorder **ret) _wur_;
KubeEventRecorder *kube_event_recorder_free(KubeEventRecorder *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeEventRecorder *, kube_event_recorder_free);

/* Messages longer than this are cut (at a UTF-8 character boundary) and end in "..."; bytes that are not UTF-8 become
 * '?'. */
#define KUBE_EVENT_MESSAGE_MAX 1024

/* Records an Event about obj: type "Normal" or "Warning", reason CamelCase (as Kubernetes' own), the message from
 * fmt. 1: posted as a new Event; 2: counted on an earlier one; 0: dropped (the object's budget is spent); < 0: not
 * recorded (-EINVAL: obj without a name, a type other than Normal/Warning, an empty reason; -ENOMEM; the writer's
 * error). r may be NULL (nothing recorded, 0): components without an API record nothing. */
int kube_event_record(KubeEventRecorder *r, const KubeObjectRef *obj, const char *type, const char *reason,
                      const char *fmt, ...) _printf_(5, 6);
/* As kube_event_record(), the message's arguments as a va_list. */
int kube_event_vrecord(KubeEventRecorder *r, const KubeObjectRef *obj, const char *type, const char *reason,
                       const char *fmt, va_list ap) _printf_(5, 0);
/* The Event ns/name could not be written: the next equal one is posted as a new Event. */
void kube_event_forget(KubeEventRecorder *r, const char *ns, const char *name);
KubeEventStats kube_event_stats(KubeEventRecorder *r);
/* The figures as a Prometheus counter family `name{result="posted|counted|dropped|failed"}` (with its HELP and TYPE
 * lines), for the components' metrics pages. */
void kube_event_stats_write(FILE *f, const char *name, KubeEventStats st);
