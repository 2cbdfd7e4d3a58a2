/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/array.h"
#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/util.h"
#include "controller/ipamclaim.h"
#include "controller/launchcheck.h"
#include "controller/metrics.h"
#include "controller/vmispec.h"
#include "kube/event.h"

#define CTL_EVENTS 1024                  /* watch history kept in memory */
#define CTL_OBJECT_MAX (3 * 1024 * 1024) /* the largest object file read back */

const CtlResource ctl_resources[] = {
        { "kubevirt.io", "v1", "VirtualMachine", "VirtualMachineList", "virtualmachines", "virtualmachine",
          { "vm", "vms", NULL }, true, true, "v1alpha3" },
        { "kubevirt.io", "v1", "VirtualMachineInstance", "VirtualMachineInstanceList", "virtualmachineinstances",
          "virtualmachineinstance", { "vmi", "vmis", NULL }, true, true, "v1alpha3" },
        { "kubevirt.io", "v1", "VirtualMachineInstanceMigration", "VirtualMachineInstanceMigrationList",
          "virtualmachineinstancemigrations", "virtualmachineinstancemigration", { "vmim", "vmims", NULL }, true, true,
          "v1alpha3" },
        { "k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition", "NetworkAttachmentDefinitionList",
          "network-attachment-definitions", "network-attachment-definition", { "net-attach-def", NULL }, true, true },
        /* persistent IPs of secondary networks (controller/ipamclaim.c) */
        { "k8s.cni.cncf.io", "v1alpha1", "IPAMClaim", "IPAMClaimList", "ipamclaims", "ipamclaim", { NULL }, true, false },
        /* core v1: the launcher pods the scheduler creates and the (simulated) nodes it places them on */
        { "", "v1", "Pod", "PodList", "pods", "pod", { "po", NULL }, true, true },
        { "", "v1", "Node", "NodeList", "nodes", "node", { "no", NULL }, false, false },
        /* what client-go's event recorders post (Multus: AddedInterface, ...) */
        { "", "v1", "Event", "EventList", "events", "event", { "ev", NULL }, true, false },
};
const size_t ctl_n_resources = ELEMENTSOF(ctl_resources);

bool ctl_resource_serves(const CtlResource *r, const char *version) {
        return streq(r->version, version) || streq_ptr(r->alt_version, version);
}

const CtlResource *ctl_resource_find(const char *group, const char *version, const char *plural) {
        for (size_t i = 0; i < ctl_n_resources; i++)
                if (streq(ctl_resources[i].group, group) && ctl_resource_serves(&ctl_resources[i], version) &&
                    streq(ctl_resources[i].plural, plural))
                        return &ctl_resources[i];
        return NULL;
}

const char *ctl_resource_qname(const CtlResource *r, char buf[static 128]) {
        snprintf(buf, 128, "%s%s%s", r->plural, r->group[0] ? "." : "", r->group);
        return buf;
}

json_t *ctl_json_path(json_t *obj, const char *path) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", path);
        json_t *v = obj;
        char *save = NULL;
        for (char *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
                v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10)) : json_object_get(v, t);
        return v;
}

const char *ctl_md(json_t *obj, const char *key) {
        return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

const char *ctl_controller_uid(json_t *obj, const char *kind, const char **ret_name) {
        size_t i;
        json_t *ref;
        json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref) {
                if (!streq_ptr(json_string_value(json_object_get(ref, "kind")), kind) ||
                    !json_is_true(json_object_get(ref, "controller")))
                        continue;
                if (ret_name)
                        *ret_name = json_string_value(json_object_get(ref, "name"));
                return json_string_value(json_object_get(ref, "uid"));
        }
        return NULL;
}

typedef struct Obj {
        const CtlResource *res;
        char *ns, *name;
        json_t *obj;
} Obj;

typedef struct Event {
        uint64_t rv;
        const CtlResource *res;
        char type[12];
        json_t *obj;
} Event;

struct CtlStore {
        char *dir; /* STATE_DIR/objects */
        bool durable;
        Obj *objs;
        size_t n, cap;
        /* objs by (resource, namespace, name): open addressing with linear probing, each slot an index into objs
         * plus one (0: empty), at most half full; a lookup is O(1) rather than a scan of every object */
        size_t *slots;
        size_t nslots; /* a power of two, or 0 */
        uint64_t rv;
        Event events[CTL_EVENTS];
        size_t ev_next, ev_n;
        struct {
                ctl_store_notify_t cb;
                void *data;
        } listeners[CTL_STORE_LISTENERS];
        ctl_admit_fn admit; /* checks of a new object against the others (admission) */
        /* cluster mode: writes go to a real API server, the objects are its (ctl_store_mirror()); no files */
        ctl_remote_fn remote;
        void *remote_data;
        KubeEventRecorder *recorder; /* the controllers' Events (controller/events.c), owned; NULL: none */
        CtlMetrics *metrics;         /* the controllers' figures (controller/metrics.c), owned; NULL: none */
};

const char *ctl_api_version(const CtlResource *r, const char *version, char buf[static 128]) {
        if (!version)
                version = r->version;
        if (!r->group[0])
                return version;
        snprintf(buf, 128, "%s/%s", r->group, version);
        return buf;
}

static const char *api_version(const CtlResource *r, char buf[128]) {
        return ctl_api_version(r, NULL, buf);
}

int ctl_check_name(const char *field, const char *v, bool label, KvErr *e) {
        size_t n = strlen(v), max = label ? 63 : 253;
        bool ok = n > 0 && n <= max;
        for (size_t i = 0; ok && i < n; i++) {
                char c = v[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                if (!alnum && c != '-' && (label || c != '.'))
                        ok = false;
                if ((i == 0 || i == n - 1) && !alnum)
                        ok = false;
        }
        if (!ok)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: '%.64s%s' is not a valid name: lowercase letters, digits and '-'%s, at most %zu "
                                 "characters, starting and ending with a letter or digit",
                                 field, v, n > 64 ? "..." : "", label ? "" : " or '.'", max);
        return 0;
}

/* ---- persistence ---- */

static void obj_path(const CtlStore *s, const CtlResource *res, const char *ns, const char *name, char *buf, size_t n) {
        snprintf(buf, n, "%s/%s/%s/%s.json", s->dir, res->plural, ns && ns[0] ? ns : "_cluster", name);
}

static int persist(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *obj) {
        if (!s->dir) /* a mirror keeps nothing: the API server does */
                return 0;
        char path[PATH_MAX], dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s/%s", s->dir, res->plural, ns && ns[0] ? ns : "_cluster");
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        obj_path(s, res, ns, name, path, sizeof path);
        if (!obj)
                r = unlink_durable(path, s->durable);
        else {
                _cleanup_free_ char *text = json_dump_compact(obj);
                if (!text)
                        return -ENOMEM;
                r = write_file_atomic(path, text, strlen(text), s->durable);
        }
        if (r < 0 && r != -ENOENT)
                return r;
        /* the counter too, at a delete: it must never go back, also after the newest objects were deleted.
         * After a create or an update the object's file holds the newest version, which a restart takes
         * (load_dir()); a number used up by a failed write names no object. One file per change
         * rather than two. */
        if (obj)
                return 0;
        char rvpath[PATH_MAX], rvtext[32];
        snprintf(rvpath, sizeof rvpath, "%s/resourceVersion", s->dir);
        int k = snprintf(rvtext, sizeof rvtext, "%llu\n", (unsigned long long) s->rv);
        return write_file_atomic(rvpath, rvtext, (size_t) k, s->durable);
}

/* ---- the index ---- */

static size_t slot_home(const CtlStore *s, const CtlResource *res, const char *ns, const char *name) {
        uint64_t h = kv_hash64(name, strlen(name));
        h = (h ^ kv_hash64(ns, strlen(ns))) * 1099511628211ULL;
        h ^= (uint64_t) (res - ctl_resources) * 0x9e3779b97f4a7c15ULL;
        return (size_t) (h ^ (h >> 29)) & (s->nslots - 1);
}

/* The slot of the object (res, ns, name), or of the empty slot where it would go. */
static size_t slot_find(const CtlStore *s, const CtlResource *res, const char *ns, const char *name) {
        size_t k = slot_home(s, res, ns, name);
        for (;; k = (k + 1) & (s->nslots - 1)) {
                const Obj *o = s->slots[k] ? &s->objs[s->slots[k] - 1] : NULL;
                if (!o || (o->res == res && streq(o->name, name) && streq(o->ns, ns)))
                        return k;
        }
}

static void slots_insert(CtlStore *s, size_t i) {
        s->slots[slot_find(s, s->objs[i].res, s->objs[i].ns, s->objs[i].name)] = i + 1;
}

/* Room in the index for n objects (a table twice as large, filled again, when it would be over half full). */
static int slots_reserve(CtlStore *s, size_t n) {
        size_t want = s->nslots ? s->nslots : 64;
        while (want / 2 < n) {
                if (want > SIZE_MAX / 4)
                        return -ENOMEM;
                want *= 2;
        }
        if (want == s->nslots)
                return 0;
        size_t *slots = calloc(want, sizeof *slots);
        if (!slots)
                return -ENOMEM;
        free(s->slots);
        s->slots = slots;
        s->nslots = want;
        for (size_t i = 0; i < s->n; i++)
                slots_insert(s, i);
        return 0;
}

/* Takes objs[i] out of the index (backward-shift deletion: the entries after it in its run move up when
 * their home allows, so that no lookup stops early at the hole). */
static void slots_remove(CtlStore *s, size_t i) {
        size_t mask = s->nslots - 1, hole = slot_find(s, s->objs[i].res, s->objs[i].ns, s->objs[i].name);
        s->slots[hole] = 0;
        for (size_t k = (hole + 1) & mask; s->slots[k]; k = (k + 1) & mask) {
                const Obj *o = &s->objs[s->slots[k] - 1];
                size_t home = slot_home(s, o->res, o->ns, o->name);
                /* it stays when its home lies cyclically in (hole, k] */
                if (hole <= k ? (hole < home && home <= k) : (hole < home || home <= k))
                        continue;
                s->slots[hole] = s->slots[k];
                s->slots[k] = 0;
                hole = k;
        }
}

static int obj_add(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *obj /* stolen */) {
        int r = ARRAY_GROW(s->objs, s->cap, s->n + 1);
        if (r >= 0)
                r = slots_reserve(s, s->n + 1);
        if (r < 0) {
                json_decref(obj);
                return r;
        }
        Obj *o = &s->objs[s->n];
        *o = (Obj){ .res = res, .ns = strdup(ns ? ns : ""), .name = strdup(name), .obj = obj };
        if (!o->ns || !o->name) {
                free(o->ns);
                free(o->name);
                json_decref(obj);
                return -ENOMEM;
        }
        slots_insert(s, s->n);
        s->n++;
        return 0;
}

static uint64_t obj_rv(json_t *obj) {
        const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        return v ? strtoull(v, NULL, 10) : 0;
}

static void load_dir(CtlStore *s, const CtlResource *res) {
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%s/%s", s->dir, res->plural);
        DIR *d = opendir(base);
        if (!d)
                return;
        struct dirent *nsd;
        while ((nsd = readdir(d))) {
                if (nsd->d_name[0] == '.')
                        continue;
                char nsdir[PATH_MAX + 256];
                snprintf(nsdir, sizeof nsdir, "%s/%s", base, nsd->d_name);
                DIR *d2 = opendir(nsdir);
                if (!d2)
                        continue;
                struct dirent *f;
                while ((f = readdir(d2))) {
                        size_t len = strlen(f->d_name);
                        if (f->d_name[0] == '.' || len < 6 || !streq(f->d_name + len - 5, ".json"))
                                continue;
                        char path[PATH_MAX + 512];
                        snprintf(path, sizeof path, "%s/%s", nsdir, f->d_name);
                        _cleanup_free_ char *text = NULL;
                        size_t tl;
                        json_t *obj = NULL;
                        KvErr e = {};
                        if (read_file_max(path, CTL_OBJECT_MAX, &text, &tl) < 0 ||
                            json_parse_object(text, tl, CTL_OBJECT_MAX, path, &obj, &e) < 0)
                                continue; /* unreadable: skipped, left for a person to look at */
                        const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
                        if (!name) {
                                json_decref(obj);
                                continue;
                        }
                        uint64_t rv = obj_rv(obj);
                        if (rv > s->rv)
                                s->rv = rv;
                        (void) obj_add(s, res, streq(nsd->d_name, "_cluster") ? "" : nsd->d_name, name, obj);
                }
                closedir(d2);
        }
        closedir(d);
}

int ctl_store_open(const char *state_dir, bool durable, CtlStore **ret, KvErr *e) {
        _cleanup_free_ CtlStore *s = calloc(1, sizeof *s);
        if (!s || asprintf(&s->dir, "%s/objects", state_dir) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "store: out of memory");
        s->durable = durable;
        int r = mkdir_p(s->dir, 0700);
        if (r < 0) {
                kverr_set_errno(e, KV_ERR_IO, r, "store: cannot create '%s'", s->dir);
                free(s->dir);
                return r;
        }
        char rvpath[PATH_MAX];
        snprintf(rvpath, sizeof rvpath, "%s/resourceVersion", s->dir);
        _cleanup_free_ char *rvtext = NULL;
        size_t len;
        if (read_file_max(rvpath, 64, &rvtext, &len) == 0)
                s->rv = strtoull(rvtext, NULL, 10);
        for (size_t i = 0; i < ctl_n_resources; i++)
                load_dir(s, &ctl_resources[i]);
        *ret = TAKE_PTR(s);
        return 0;
}

int ctl_store_open_mirror(ctl_remote_fn fn, void *userdata, CtlStore **ret) {
        CtlStore *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->remote = fn;
        s->remote_data = userdata;
        *ret = s;
        return 0;
}

CtlStore *ctl_store_free(CtlStore *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                free(s->objs[i].ns);
                free(s->objs[i].name);
                json_decref(s->objs[i].obj);
        }
        for (size_t i = 0; i < CTL_EVENTS; i++)
                json_decref(s->events[i].obj);
        free(s->objs);
        free(s->slots);
        free(s->dir);
        kube_event_recorder_free(s->recorder);
        ctl_metrics_free(s->metrics);
        free(s);
        return NULL;
}

void ctl_store_set_recorder(CtlStore *s, KubeEventRecorder *r) {
        kube_event_recorder_free(s->recorder);
        s->recorder = r;
}

KubeEventRecorder *ctl_store_recorder(CtlStore *s) {
        return s ? s->recorder : NULL;
}

void ctl_store_set_metrics(CtlStore *s, CtlMetrics *m) {
        ctl_metrics_free(s->metrics);
        s->metrics = m;
}

CtlMetrics *ctl_store_metrics(CtlStore *s) {
        return s ? s->metrics : NULL;
}

int ctl_store_post_event(CtlStore *s, const char *ns, const char *name, json_t *body, bool patch, KvErr *e) {
        const CtlResource *res = ctl_resource_find("", "v1", "events");
        _cleanup_json_ json_t *got = NULL;
        if (s->remote)
                /* the API server's Events are written, never watched: the mirror keeps none of them */
                return s->remote(s->remote_data, patch ? CTL_REMOTE_PATCH : CTL_REMOTE_CREATE, res, ns, name, body,
                                 &got, e);
        return patch ? ctl_store_patch(s, res, ns, name, body, &got, e) : ctl_store_create(s, res, ns, body, &got, e);
}

int ctl_store_add_notify(CtlStore *s, ctl_store_notify_t cb, void *userdata) {
        for (size_t i = 0; i < CTL_STORE_LISTENERS; i++)
                if (!s->listeners[i].cb) {
                        s->listeners[i].cb = cb;
                        s->listeners[i].data = userdata;
                        return 0;
                }
        return -ENOSPC;
}

void ctl_store_remove_notify(CtlStore *s, ctl_store_notify_t cb, void *userdata) {
        for (size_t i = 0; i < CTL_STORE_LISTENERS; i++)
                if (s->listeners[i].cb == cb && s->listeners[i].data == userdata)
                        s->listeners[i].cb = NULL;
}

uint64_t ctl_store_rv(const CtlStore *s) {
        return s->rv;
}

size_t ctl_store_count(const CtlStore *s) {
        return s->n;
}

static Obj *find(CtlStore *s, const CtlResource *res, const char *ns, const char *name) {
        if (!s->nslots || !name)
                return NULL;
        size_t k = s->slots[slot_find(s, res, ns ? ns : "", name)];
        return k ? &s->objs[k - 1] : NULL;
}

/* find(), or NULL with e saying what was not found (Kubernetes' wording: kubectl shows it). */
static Obj *find_e(CtlStore *s, const CtlResource *res, const char *ns, const char *name, KvErr *e) {
        Obj *o = find(s, res, ns, name);
        if (!o)
                kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "%s \"%s\" not found",
                          ctl_resource_qname(res, (char[128]){ 0 }), name);
        return o;
}

static void record(CtlStore *s, const CtlResource *res, const char *type, json_t *obj) {
        Event *ev = &s->events[s->ev_next];
        json_decref(ev->obj);
        *ev = (Event){ .rv = s->rv, .res = res, .obj = json_deep_copy(obj) };
        snprintf(ev->type, sizeof ev->type, "%s", type);
        s->ev_next = (s->ev_next + 1) % CTL_EVENTS;
        if (s->ev_n < CTL_EVENTS)
                s->ev_n++;
        for (size_t i = 0; i < CTL_STORE_LISTENERS; i++)
                if (s->listeners[i].cb)
                        s->listeners[i].cb(s->listeners[i].data);
}

/* ---- checks shared by create and update ---- */

/* What the scheduler reads of a VMI (requests, nodeSelector, Multus networks), as KubeVirt's webhook checks it. */
static int check_vmi_spec(json_t *spec, const char *field, const char *verb, KvErr *e) {
        CtlVmiSpec vs;
        KvErr pe = {};
        if (ctl_vmi_spec_parse(spec, field, &vs, &pe) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: %s", verb, pe.msg);
        return 0;
}

/* What each kind's spec must hold for kvnet to act on it (KubeVirt's admission webhooks check the same). */
static int check_spec(const CtlResource *res, json_t *obj, const char *verb, KvErr *e) {
        json_t *spec = json_object_get(obj, "spec");
        if (streq(res->kind, "VirtualMachine")) {
                json_t *t = json_object_get(spec, "template"), *run = json_object_get(spec, "running"),
                       *rs = json_object_get(spec, "runStrategy");
                if (!json_is_object(t))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec.template' must be an object, got %s",
                                         verb, t ? json_type_name(t) : "nothing");
                if (run && !json_is_boolean(run))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec.running' must be a boolean, got %s",
                                         verb, json_type_name(run));
                if (rs) {
                        const char *v = json_string_value(rs);
                        if (!v || !(streq(v, "Always") || streq(v, "RerunOnFailure") || streq(v, "Halted") ||
                                    streq(v, "Manual") || streq(v, "Once")))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: 'spec.runStrategy' must be Always, RerunOnFailure, Once, Manual or "
                                                 "Halted, got '%.32s'",
                                                 verb, v ? v : json_type_name(rs));
                        if (run)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: 'spec.running' and 'spec.runStrategy' are mutually exclusive", verb);
                }
                int r = check_vmi_spec(json_object_get(t, "spec"), "spec.template.spec", verb, e);
                return r < 0 ? r : ctl_launcher_check(obj, res->kind, verb, e);
        } else if (streq(res->kind, "VirtualMachineInstance")) {
                int r = check_vmi_spec(spec, "spec", verb, e);
                return r < 0 ? r : ctl_launcher_check(obj, res->kind, verb, e);
        } else if (streq(res->kind, "VirtualMachineInstanceMigration")) {
                json_t *v = json_object_get(spec, "vmiName");
                if (!json_is_string(v) || !json_string_length(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'spec.vmiName' (the VMI to migrate) is required", verb);
                json_t *sel = json_object_get(spec, "addedNodeSelector"), *val;
                const char *key;
                if (sel && !json_is_object(sel))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'spec.addedNodeSelector' must be an object of labels, got %s", verb,
                                         json_type_name(sel));
                json_object_foreach(sel, key, val) if (!json_is_string(val)) return kverr_set(
                        e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec.addedNodeSelector.%.64s' must be a string, got %s",
                        verb, key, json_type_name(val));
        } else if (streq(res->kind, "IPAMClaim")) {
                return ctl_ipamclaim_check(obj, verb, e);
        } else if (streq(res->kind, "NetworkAttachmentDefinition")) {
                json_t *v = json_object_get(spec, "config");
                if (v && !json_is_string(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'spec.config' must be a string holding the CNI config as JSON, got %s",
                                         verb, json_type_name(v));
                if (v && json_string_length(v)) {
                        KvErr pe = {};
                        json_t *conf = NULL;
                        if (json_parse_object(json_string_value(v), json_string_length(v), CTL_OBJECT_MAX,
                                              "spec.config", &conf, &pe) < 0)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: %s", verb, pe.msg);
                        json_decref(conf);
                }
        }
        return 0;
}

static int check_object(const CtlResource *res, const char *ns, json_t *obj, const char *verb, KvErr *e) {
        char av[128];
        if (!json_is_object(obj))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: the body must be a JSON object, got %s", verb,
                                 json_type_name(obj));
        const char *want = api_version(res, av);
        json_t *v = json_object_get(obj, "apiVersion");
        if (v && (!json_is_string(v) || !streq(json_string_value(v), want)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'apiVersion' must be '%s' here, got '%.64s'",
                                 verb, want, json_is_string(v) ? json_string_value(v) : json_type_name(v));
        v = json_object_get(obj, "kind");
        if (v && (!json_is_string(v) || !streq(json_string_value(v), res->kind)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'kind' must be '%s' here, got '%.64s'", verb,
                                 res->kind, json_is_string(v) ? json_string_value(v) : json_type_name(v));
        json_t *md = json_object_get(obj, "metadata");
        if (!json_is_object(md))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'metadata' must be an object, got %s", verb,
                                 md ? json_type_name(md) : "nothing");
        v = json_object_get(md, "namespace");
        if (v && !json_is_string(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'metadata.namespace' must be a string", verb);
        if (v && ns && !streq(json_string_value(v), ns))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'metadata.namespace' '%.64s' does not match the namespace of the request '%s'",
                                 verb, json_string_value(v), ns);
        for (const char *const *k = (const char *const[]){ "labels", "annotations", NULL }; *k; k++) {
                json_t *m = json_object_get(md, *k);
                const char *key;
                json_t *val;
                if (m && !json_is_object(m))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'metadata.%s' must be an object", verb,
                                         *k);
                json_object_foreach(m, key, val) if (!json_is_string(val)) return kverr_set(
                        e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'metadata.%s.%.64s' must be a string, got %s", verb, *k,
                        key, json_type_name(val));
        }
        v = json_object_get(obj, "spec");
        if (v && !json_is_object(v))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'spec' must be an object, got %s", verb,
                                 json_type_name(v));
        json_object_set_new(obj, "apiVersion", json_string(want));
        json_object_set_new(obj, "kind", json_string(res->kind));
        return 0;
}

/* check_object(), then what the kind's spec must hold. */
static int check_object_spec(const CtlResource *res, const char *ns, json_t *obj, const char *verb, KvErr *e) {
        int r = check_object(res, ns, obj, verb, e);
        return r < 0 ? r : check_spec(res, obj, verb, e);
}

static void set_rv(json_t *md, uint64_t rv) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long) rv);
        json_object_set_new(md, "resourceVersion", json_string(b));
}

static void new_uid(char buf[37]) {
        uint8_t u[16] = {};
        if (getrandom(u, sizeof u, 0) != (ssize_t) sizeof u) {
                uint64_t t = realtime_usec();
                memcpy(u, &t, sizeof t);
        }
        u[6] = (uint8_t) ((u[6] & 0x0f) | 0x40);
        u[8] = (uint8_t) ((u[8] & 0x3f) | 0x80);
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

void ctl_store_set_admission(CtlStore *s, ctl_admit_fn fn) {
        s->admit = fn;
}

const char *ctl_now_rfc3339(char buf[static 32]) {
        return kstatus_time(0, buf);
}

/* ---- operations ---- */

int ctl_store_create(CtlStore *s, const CtlResource *res, const char *ns, json_t *in, json_t **ret, KvErr *e) {
        _cleanup_json_ json_t *obj = json_deep_copy(in);
        if (in && !obj)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "create: out of memory");
        int r = check_object(res, ns, obj, "create", e);
        if (r < 0)
                return r;
        json_t *md = json_object_get(obj, "metadata");
        if (json_object_get(md, "resourceVersion"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "create: 'metadata.resourceVersion' must not be set on an object to be created");
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *gen = json_string_value(json_object_get(md, "generateName"));
        char genbuf[300];
        if (!name && gen) {
                uint8_t rnd[5];
                if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                        memset(rnd, 7, sizeof rnd);
                snprintf(genbuf, sizeof genbuf, "%.240s", gen);
                for (size_t i = 0; i < sizeof rnd; i++) {
                        size_t k = strlen(genbuf);
                        genbuf[k] = "bcdfghjklmnpqrstvwxz2456789"[rnd[i] % 27];
                        genbuf[k + 1] = '\0';
                }
                name = genbuf;
                json_object_set_new(md, "name", json_string(name));
        }
        if (!name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "create: 'metadata.name' is required");
        if ((r = ctl_check_name("metadata.name", name, false, e)) < 0)
                return r;
        /* the spec after the name, whose errors are the more basic */
        if ((r = check_spec(res, obj, "create", e)) < 0)
                return r;
        if (res->namespaced) {
                if (!ns || !ns[0])
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "create: %s is namespaced: no namespace given",
                                         res->kind);
                json_object_set_new(md, "namespace", json_string(ns));
        }
        if (find(s, res, ns, name))
                return kverr_set(e, KV_ERR_EXISTS, -EEXIST, "%s \"%s\" already exists",
                                 ctl_resource_qname(res, (char[128]){ 0 }), name);
        if (s->admit && (r = s->admit(s, res, ns, obj, e)) < 0)
                return r;
        if (s->remote) {
                json_object_del(obj, "status");
                _cleanup_json_ json_t *got = NULL;
                if ((r = s->remote(s->remote_data, CTL_REMOTE_CREATE, res, ns, name, obj, &got, e)) < 0)
                        return r;
                if ((r = ctl_store_mirror(s, res, "ADDED", got)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "create: out of memory");
                *ret = TAKE_PTR(got);
                return 0;
        }
        char uid[37], ts[32];
        new_uid(uid);
        ctl_now_rfc3339(ts);
        json_object_set_new(md, "uid", json_string(uid));
        json_object_set_new(md, "creationTimestamp", json_string(ts));
        json_object_set_new(md, "generation", json_integer(1));
        json_object_del(obj, "status"); /* the status belongs to the controller (status subresource) */
        s->rv++;
        set_rv(md, s->rv);
        r = persist(s, res, ns, name, obj);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "create: cannot store %s '%s'", res->kind, name);
        r = obj_add(s, res, ns, name, json_incref(obj));
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "create: out of memory");
        record(s, res, "ADDED", obj);
        *ret = TAKE_PTR(obj);
        return 0;
}

int ctl_store_get(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t **ret) {
        Obj *o = find(s, res, ns, name);
        if (!o)
                return -ENOENT;
        *ret = json_deep_copy(o->obj);
        return *ret ? 0 : -ENOMEM;
}

json_t *ctl_store_ref(CtlStore *s, const CtlResource *res, const char *ns, const char *name) {
        Obj *o = find(s, res, ns, name);
        return o ? json_incref(o->obj) : NULL;
}

json_t *ctl_store_items(CtlStore *s, const CtlResource *res) {
        json_t *items = json_array();
        for (size_t i = 0; items && i < s->n; i++)
                if (s->objs[i].res == res && json_array_append(items, s->objs[i].obj) < 0) {
                        json_decref(items);
                        return NULL;
                }
        return items;
}

json_t *ctl_store_list(CtlStore *s, const CtlResource *res, const char *ns, const char *name) {
        char av[128], rv[32];
        json_t *items = json_array();
        for (size_t i = 0; items && i < s->n; i++) {
                Obj *o = &s->objs[i];
                if (o->res != res || (ns && !streq(o->ns, ns)) || (name && !streq(o->name, name)))
                        continue;
                json_array_append_new(items, json_deep_copy(o->obj));
        }
        snprintf(rv, sizeof rv, "%llu", (unsigned long long) s->rv);
        return json_pack("{s:s,s:s,s:{s:s},s:o}", "apiVersion", api_version(res, av), "kind", res->list_kind, "metadata",
                         "resourceVersion", rv, "items", items ? items : json_array());
}

/* obj becomes o's new version: the next resourceVersion, on disk, in memory, in the event log. A failed write
 * uses the number up rather than giving it back: persist() may have written the object before the counter,
 * and a resourceVersion must never name two versions. */
static int modified(CtlStore *s, Obj *o, json_t *obj, const char *verb, KvErr *e) {
        if (s->remote) {
                /* the API server decides (its resourceVersion precondition too); its answer is the new version */
                _cleanup_json_ json_t *got = NULL;
                int r = s->remote(s->remote_data, streq(verb, "status") ? CTL_REMOTE_UPDATE_STATUS : CTL_REMOTE_UPDATE,
                                  o->res, o->ns, o->name, obj, &got, e);
                if (r >= 0 && (r = ctl_store_mirror(s, o->res, "MODIFIED", got)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "%s: out of memory", verb);
                return r;
        }
        s->rv++;
        set_rv(json_object_get(obj, "metadata"), s->rv);
        int r = persist(s, o->res, o->ns, o->name, obj);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "%s: cannot store %s '%s'", verb, o->res->kind, o->name);
        json_decref(o->obj);
        o->obj = json_incref(obj);
        record(s, o->res, "MODIFIED", obj);
        return 0;
}

/* An update naming a resourceVersion other than the stored one: 409, before the object is checked (as
 * kube-apiserver does). */
static int check_rv(const Obj *o, json_t *obj, KvErr *e) {
        const char *want_rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        const char *have_rv = json_string_value(json_object_get(json_object_get(o->obj, "metadata"), "resourceVersion"));
        if (want_rv && want_rv[0] && !streq_ptr(want_rv, have_rv))
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY,
                                 "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please "
                                 "apply your changes to the latest version and try again",
                                 ctl_resource_qname(o->res, (char[128]){ 0 }), o->name);
        return 0;
}

static int replace(CtlStore *s, Obj *o, json_t *obj /* checked, owned by caller */, json_t **ret, KvErr *e) {
        json_t *md = json_object_get(obj, "metadata"), *old_md = json_object_get(o->obj, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        if (!name || !streq(name, o->name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "update: 'metadata.name' '%.64s' does not match the name of the request '%s'",
                                 name ? name : "", o->name);
        int r = check_rv(o, obj, e);
        if (r < 0)
                return r;
        /* what the server owns stays the server's */
        for (const char *const *k = (const char *const[]){ "uid", "creationTimestamp", "namespace", NULL }; *k; k++) {
                json_t *v = json_object_get(old_md, *k);
                if (v)
                        json_object_set(md, *k, v);
        }
        json_t *old_status = json_object_get(o->obj, "status");
        if (old_status)
                json_object_set(obj, "status", old_status);
        else
                json_object_del(obj, "status");
        long long gen = json_integer_value(json_object_get(old_md, "generation"));
        if (!json_equal(json_object_get(obj, "spec"), json_object_get(o->obj, "spec")))
                gen++;
        json_object_set_new(md, "generation", json_integer(gen));
        r = modified(s, o, obj, "update", e);
        if (r < 0)
                return r;
        *ret = json_incref(o->obj); /* obj, or in cluster mode what the API server made of it */
        return 0;
}

int ctl_store_update(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *in, json_t **ret,
                     KvErr *e) {
        Obj *o = find_e(s, res, ns, name, e);
        if (!o)
                return -ENOENT;
        _cleanup_json_ json_t *obj = json_deep_copy(in);
        int r = json_is_object(obj) ? check_rv(o, obj, e) : 0;
        if (r >= 0)
                r = check_object_spec(res, ns, obj, "update", e);
        if (r < 0)
                return r;
        return replace(s, o, obj, ret, e);
}

int ctl_store_patch(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *patch, json_t **ret,
                    KvErr *e) {
        Obj *o = find_e(s, res, ns, name, e);
        if (!o)
                return -ENOENT;
        if (!json_is_object(patch))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "patch: a merge patch must be a JSON object, got %s",
                                 json_type_name(patch));
        _cleanup_json_ json_t *obj = ctl_merge_patch(o->obj, patch);
        if (!obj)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "patch: out of memory");
        int r = check_object_spec(res, ns, obj, "patch", e);
        if (r < 0)
                return r;
        if (s->remote) {
                /* the patch itself: the API server applies it to its current version (no resourceVersion race) */
                _cleanup_json_ json_t *got = NULL;
                if ((r = s->remote(s->remote_data, CTL_REMOTE_PATCH, res, ns, name, patch, &got, e)) < 0)
                        return r;
                if ((r = ctl_store_mirror(s, res, "MODIFIED", got)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "patch: out of memory");
                *ret = TAKE_PTR(got);
                return 0;
        }
        return replace(s, o, obj, ret, e);
}

int ctl_store_set_status(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *status,
                         KvErr *e) {
        return ctl_store_set_status_meta(s, res, ns, name, status, NULL, e);
}

int ctl_store_set_status_meta(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *status,
                              json_t *meta, KvErr *e) {
        static const char *const keys[] = { "labels", "annotations", "finalizers" };
        Obj *o = find_e(s, res, ns, name, e);
        if (!o)
                return -ENOENT;
        if (meta && !json_is_object(meta))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "status: 'metadata' must be an object, got %s",
                                 json_type_name(meta));
        for (size_t k = 0; meta && k < ELEMENTSOF(keys); k++) {
                json_t *m = json_object_get(meta, keys[k]), *val;
                const char *key;
                size_t i;
                if (m && json_is_null(m))
                        continue;
                if (k < 2 && m && !json_is_object(m))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "status: 'metadata.%s' must be an object",
                                         keys[k]);
                if (k < 2)
                        json_object_foreach(m, key, val) if (!json_is_string(val)) return kverr_set(
                                e, KV_ERR_INVALID_CONFIG, -EINVAL, "status: 'metadata.%s.%.64s' must be a string, got %s",
                                keys[k], key, json_type_name(val));
                if (k == 2 && m && !json_is_array(m))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "status: 'metadata.finalizers' must be a list");
                json_array_foreach(k == 2 ? m : NULL, i, val) if (!json_is_string(val)) return kverr_set(
                        e, KV_ERR_INVALID_CONFIG, -EINVAL, "status: 'metadata.finalizers[%zu]' must be a string", i);
        }
        _cleanup_json_ json_t *obj = json_deep_copy(o->obj);
        if (!obj || json_object_set(obj, "status", status) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "status: out of memory");
        json_t *md = json_object_get(obj, "metadata");
        for (size_t k = 0; meta && k < ELEMENTSOF(keys); k++) {
                json_t *m = json_object_get(meta, keys[k]);
                bool empty = !m || json_is_null(m) || (json_is_object(m) && !json_object_size(m)) ||
                             (json_is_array(m) && !json_array_size(m));
                if (empty)
                        json_object_del(md, keys[k]);
                else
                        json_object_set(md, keys[k], m);
        }
        if (json_equal(obj, o->obj))
                return 0;
        if (streq(res->kind, "IPAMClaim") && ctl_ipamclaim_check(obj, "status", e) < 0)
                return -EINVAL;
        return modified(s, o, obj, "status", e);
}

/* o leaves the index and the array (the last object takes its place). */
static void obj_remove(CtlStore *s, Obj *o) {
        size_t i = (size_t) (o - s->objs);
        slots_remove(s, i);
        free(o->ns);
        free(o->name);
        json_decref(o->obj);
        if (i != --s->n) {
                /* the last object fills the gap: its slot names its new place */
                *o = s->objs[s->n];
                s->slots[slot_find(s, o->res, o->ns, o->name)] = i + 1;
        }
}

int ctl_store_delete(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t **ret, KvErr *e) {
        Obj *o = find_e(s, res, ns, name, e);
        if (!o)
                return -ENOENT;
        if (s->remote) {
                _cleanup_json_ json_t *got = NULL;
                int r = s->remote(s->remote_data, CTL_REMOTE_DELETE, res, ns, name, NULL, &got, e);
                if (r < 0)
                        return r;
                /* a graceful deletion (a pod until its node confirms, finalizers): still there, marked */
                bool marked = got && json_object_get(json_object_get(got, "metadata"), "deletionTimestamp") &&
                              streq_ptr(json_string_value(json_object_get(got, "kind")), res->kind);
                if (marked) {
                        if ((r = ctl_store_mirror(s, res, "MODIFIED", got)) < 0)
                                return kverr_set(e, KV_ERR_INTERNAL, r, "delete: out of memory");
                        *ret = TAKE_PTR(got);
                        return 0;
                }
                json_t *obj = json_deep_copy(o->obj);
                if (!obj)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "delete: out of memory");
                obj_remove(s, o);
                record(s, res, "DELETED", obj);
                *ret = obj;
                return 0;
        }
        /* a copy: the stored object may be shared (ctl_store_ref(), ctl_store_items()), and stays as it was */
        json_t *obj = json_deep_copy(o->obj);
        if (!obj)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "delete: out of memory");
        s->rv++; /* used up on failure too, as in modified() */
        int r = persist(s, res, ns, name, NULL);
        if (r < 0) {
                json_decref(obj);
                return kverr_set_errno(e, KV_ERR_IO, r, "delete: cannot remove %s '%s'", res->kind, name);
        }
        set_rv(json_object_get(obj, "metadata"), s->rv);
        obj_remove(s, o);
        record(s, res, "DELETED", obj);
        *ret = obj;
        return 0;
}

int ctl_store_mirror(CtlStore *s, const CtlResource *res, const char *type, json_t *obj) {
        json_t *md = json_object_get(obj, "metadata");
        const char *ns = json_string_value(json_object_get(md, "namespace")), *name = json_string_value(json_object_get(md, "name"));
        if (!name)
                return -EINVAL;
        if (!res->namespaced)
                ns = "";
        else if (!ns)
                return -EINVAL;
        Obj *o = find(s, res, ns, name);
        if (streq(type, "DELETED")) {
                if (!o)
                        return 0;
                json_t *old = json_incref(o->obj);
                obj_remove(s, o);
                record(s, res, "DELETED", old);
                json_decref(old);
                return 0;
        }
        if (o) {
                const char *have = ctl_md(o->obj, "resourceVersion"), *want = json_string_value(json_object_get(md, "resourceVersion"));
                if (streq_ptr(have, want))
                        return 0; /* the answer to our own write, seen again on the watch */
                json_decref(o->obj);
                o->obj = json_incref(obj);
                record(s, res, "MODIFIED", obj);
                return 0;
        }
        int r = obj_add(s, res, ns, name, json_incref(obj));
        if (r < 0)
                return r;
        record(s, res, "ADDED", obj);
        return 0;
}

int ctl_store_events(CtlStore *s, const CtlResource *res, const char *ns, const char *name, uint64_t since,
                     ctl_event_cb cb, void *userdata, uint64_t *ret_rv) {
        size_t oldest = (s->ev_next + CTL_EVENTS - s->ev_n) % CTL_EVENTS;
        uint64_t first = s->ev_n ? s->events[oldest].rv : s->rv + 1;
        if (since < s->rv && since + 1 < first)
                return -ESTALE;
        uint64_t last = since;
        for (size_t k = 0; k < s->ev_n; k++) {
                Event *ev = &s->events[(oldest + k) % CTL_EVENTS];
                if (ev->rv <= since)
                        continue;
                last = ev->rv;
                json_t *md = json_object_get(ev->obj, "metadata");
                if (ev->res != res || (ns && !streq_ptr(json_string_value(json_object_get(md, "namespace")), ns)) ||
                    (name && !streq_ptr(json_string_value(json_object_get(md, "name")), name)))
                        continue;
                int r = cb(ev->type, ev->obj, userdata);
                if (r < 0)
                        return r;
        }
        *ret_rv = last;
        return 0;
}

json_t *ctl_merge_patch(json_t *target, json_t *patch) {
        if (!json_is_object(patch))
                return json_deep_copy(patch);
        json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
        const char *k;
        json_t *v;
        json_object_foreach(patch, k, v) {
                if (!out)
                        return NULL;
                if (json_is_null(v)) {
                        json_object_del(out, k);
                        continue;
                }
                json_t *m = ctl_merge_patch(json_object_get(out, k), v);
                if (!m || json_object_set_new(out, k, m) < 0) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* ---- RFC 6902 ---- */

#define PTR_MAX_DEPTH 32

/* Splits an RFC 6901 pointer into unescaped tokens in buf; -EINVAL if it is not one. */
static int ptr_split(const char *ptr, char *buf, size_t bufsize, char *tok[PTR_MAX_DEPTH], size_t *ret_n) {
        size_t n = 0, k = 0;
        if (!ptr || (ptr[0] && ptr[0] != '/') || strlen(ptr) >= bufsize)
                return -EINVAL;
        for (const char *p = ptr; *p;) {
                if (n == PTR_MAX_DEPTH)
                        return -E2BIG;
                p++; /* the '/' */
                tok[n++] = buf + k;
                for (; *p && *p != '/'; p++) {
                        if (*p == '~') {
                                if (p[1] != '0' && p[1] != '1')
                                        return -EINVAL;
                                buf[k++] = p[1] == '0' ? '~' : '/';
                                p++;
                        } else
                                buf[k++] = *p;
                }
                buf[k++] = '\0';
        }
        *ret_n = n;
        return 0;
}

/* An array index token: digits without a leading zero; "-" (one past the end) only when allowed. */
static int ptr_index(const char *t, size_t size, bool end_ok, size_t *ret) {
        if (end_ok && streq(t, "-")) {
                *ret = size;
                return 0;
        }
        if (!*t || (t[0] == '0' && t[1]) || strspn(t, "0123456789") != strlen(t) || strlen(t) > 9)
                return -EINVAL;
        size_t i = strtoul(t, NULL, 10);
        if (i > size || (i == size && !end_ok))
                return -ERANGE;
        *ret = i;
        return 0;
}

/* The value at tokens tok[0..n) of doc, or NULL. */
static json_t *ptr_get(json_t *doc, char **tok, size_t n) {
        json_t *v = doc;
        for (size_t i = 0; v && i < n; i++) {
                if (json_is_object(v))
                        v = json_object_get(v, tok[i]);
                else if (json_is_array(v)) {
                        size_t idx;
                        v = ptr_index(tok[i], json_array_size(v), false, &idx) == 0 ? json_array_get(v, idx) : NULL;
                } else
                        v = NULL;
        }
        return v;
}

/* add/remove at a location; *doc may be replaced (a pointer to the whole document). */
static int ptr_add(json_t **doc, char **tok, size_t n, json_t *value /* stolen */) {
        if (n == 0) {
                json_decref(*doc);
                *doc = value;
                return 0;
        }
        json_t *parent = ptr_get(*doc, tok, n - 1);
        if (json_is_object(parent))
                return json_object_set_new(parent, tok[n - 1], value) < 0 ? -ENOMEM : 0;
        size_t idx;
        if (json_is_array(parent) && ptr_index(tok[n - 1], json_array_size(parent), true, &idx) == 0)
                return json_array_insert_new(parent, idx, value) < 0 ? -ENOMEM : 0;
        json_decref(value);
        return -ENOENT;
}

static int ptr_remove(json_t *doc, char **tok, size_t n) {
        if (n == 0)
                return -EINVAL; /* the whole document cannot be removed */
        json_t *parent = ptr_get(doc, tok, n - 1);
        if (json_is_object(parent))
                return json_object_del(parent, tok[n - 1]) == 0 ? 0 : -ENOENT;
        size_t idx;
        if (json_is_array(parent) && ptr_index(tok[n - 1], json_array_size(parent), false, &idx) == 0)
                return json_array_remove(parent, idx) == 0 ? 0 : -ENOENT;
        return -ENOENT;
}

json_t *ctl_json_patch(json_t *target, json_t *ops, KvErr *e) {
        if (!json_is_array(ops)) {
                kverr_set(e, KV_ERR_DECODE, -EINVAL, "patch: a JSON patch must be an array of operations, got %s",
                          json_type_name(ops));
                return NULL;
        }
        json_t *doc = json_deep_copy(target);
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) {
                const char *name = json_string_value(json_object_get(op, "op"));
                const char *path = json_string_value(json_object_get(op, "path"));
                const char *from = json_string_value(json_object_get(op, "from"));
                json_t *value = json_object_get(op, "value");
                char pb[1024], fb[1024];
                char *pt[PTR_MAX_DEPTH], *ft[PTR_MAX_DEPTH];
                size_t pn = 0, fn = 0;
                int r = 0;
                const char *why = NULL;
                if (!json_is_object(op) || !name)
                        why = "is not an object with an 'op'";
                else if (!path || ptr_split(path, pb, sizeof pb, pt, &pn) < 0)
                        why = "has no valid 'path' (a JSON pointer such as /spec/running)";
                else if ((streq(name, "move") || streq(name, "copy")) &&
                         (!from || ptr_split(from, fb, sizeof fb, ft, &fn) < 0))
                        why = "has no valid 'from'";
                else if ((streq(name, "add") || streq(name, "replace") || streq(name, "test")) && !value)
                        why = "has no 'value'";
                if (why) {
                        kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "patch: operation %zu %s", i, why);
                        json_decref(doc);
                        return NULL;
                }
                if (streq(name, "add"))
                        r = ptr_add(&doc, pt, pn, json_deep_copy(value));
                else if (streq(name, "remove"))
                        r = ptr_remove(doc, pt, pn);
                else if (streq(name, "replace"))
                        r = !ptr_get(doc, pt, pn) ? -ENOENT
                            : pn == 0          ? ptr_add(&doc, pt, pn, json_deep_copy(value))
                                               : (ptr_remove(doc, pt, pn) < 0 ? -ENOENT
                                                                              : ptr_add(&doc, pt, pn, json_deep_copy(value)));
                else if (streq(name, "test"))
                        r = json_equal(ptr_get(doc, pt, pn), value) ? 0 : -EDOM;
                else if (streq(name, "copy") || streq(name, "move")) {
                        json_t *v = json_deep_copy(ptr_get(doc, ft, fn));
                        bool into_itself = streq(name, "move") && strncmp(path, from, strlen(from)) == 0 &&
                                           (path[strlen(from)] == '/' || !path[strlen(from)]) && strcmp(path, from);
                        if (!v)
                                r = -ENOENT;
                        else if (into_itself) {
                                json_decref(v);
                                r = -ELOOP;
                        } else if (streq(name, "move") && (r = ptr_remove(doc, ft, fn)) < 0)
                                json_decref(v);
                        else
                                r = ptr_add(&doc, pt, pn, v);
                } else {
                        kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                  "patch: operation %zu: 'op' must be add, remove, replace, move, copy or test, got "
                                  "'%.32s'",
                                  i, name);
                        json_decref(doc);
                        return NULL;
                }
                if (r < 0) {
                        kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "patch: operation %zu (%s %.256s) failed: %s", i,
                                  name, path,
                                  r == -EDOM    ? "the value differs (test)"
                                  : r == -ELOOP ? "'from' is a parent of 'path'"
                                  : r == -ENOMEM ? "out of memory"
                                                 : "no such location");
                        json_decref(doc);
                        return NULL;
                }
        }
        return doc;
}

int ctl_store_json_patch(CtlStore *s, const CtlResource *res, const char *ns, const char *name, json_t *ops,
                         json_t **ret, KvErr *e) {
        Obj *o = find_e(s, res, ns, name, e);
        if (!o)
                return -ENOENT;
        _cleanup_json_ json_t *obj = ctl_json_patch(o->obj, ops, e);
        if (!obj)
                return -EINVAL;
        int r = check_object_spec(res, ns, obj, "patch", e);
        if (r < 0)
                return r;
        return replace(s, o, obj, ret, e);
}
