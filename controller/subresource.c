/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/subresource.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/vm.h"
#include "handler/handler.h"

static const struct {
        const char *plural, *verb;
} subresources[] = {
        { "virtualmachines", "start" },
        { "virtualmachines", "stop" },
        { "virtualmachines", "restart" },
        { "virtualmachines", "migrate" },
        { "virtualmachineinstances", "pause" },
        { "virtualmachineinstances", "unpause" },
};

bool ctl_subresource_known(const char *plural, const char *verb) {
        for (size_t i = 0; i < ELEMENTSOF(subresources); i++)
                if (streq(plural, subresources[i].plural) && streq(verb, subresources[i].verb))
                        return true;
        return false;
}

json_t *ctl_subresource_list(void) {
        json_t *list = json_array();
        for (size_t i = 0; list && i < ELEMENTSOF(subresources); i++) {
                char name[96];
                snprintf(name, sizeof name, "%s/%s", subresources[i].plural, subresources[i].verb);
                json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:[s]}", "name", name, "singularName", "",
                                                      "namespaced", true, "kind", "", "verbs", "update"));
        }
        return list;
}

/* ---- one request ---- */

typedef struct Sub {
        CtlStore *s;
        const char *ns, *name;
        json_t *body;
        bool dry_run;
        unsigned code;
        const char *reason;
        KvErr *e;
} Sub;

static const CtlResource *res_of(const char *plural) {
        return ctl_resource_find("kubevirt.io", "v1", plural);
}

_printf_(5, 6) static int fail(Sub *q, unsigned code, const char *reason, int r, const char *fmt, ...) {
        va_list ap;
        q->code = code;
        q->reason = reason;
        va_start(ap, fmt);
        kverr_setv(q->e, code == 400 ? KV_ERR_INVALID_CONFIG : KV_ERR_INTERNAL, r, fmt, ap);
        va_end(ap);
        return r;
}

/* 409, as KubeVirt's errors.NewConflict(v1.Resource(what), name, why) words it */
_printf_(3, 4) static int conflict(Sub *q, const char *what, const char *fmt, ...) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        return fail(q, 409, "Conflict", -EBUSY, "Operation cannot be fulfilled on %s.kubevirt.io \"%s\": %s", what,
                    q->name, why);
}

static int internal(Sub *q, const char *msg) {
        return fail(q, 500, "InternalError", -EIO, "Internal error occurred: %s", msg);
}

static int bad_body(Sub *q, const char *kind, const char *field, const char *want) {
        return fail(q, 400, "BadRequest", -EINVAL,
                    "Can not unmarshal Request body to struct, error: %s.%s must be %s", kind, field, want);
}

/* The object named by the request (NULL when there is none), or a 404 as KubeVirt words it. */
static json_t *fetch(Sub *q, const char *plural, bool must) {
        json_t *o = NULL;
        if (ctl_store_get(q->s, res_of(plural), q->ns, q->name, &o) < 0) {
                o = NULL;
                if (must) {
                        char what[64];
                        snprintf(what, sizeof what, "%.*s", (int) strlen(plural) - 1, plural); /* singular */
                        fail(q, 404, "NotFound", -ENOENT, "%s.kubevirt.io \"%s\" not found", what, q->name);
                }
        }
        return o;
}

/* A field of the options: 0 and *ret NULL when absent (or null), 400 when not of the type. */
static int option(Sub *q, const char *kind, const char *key, json_type type, json_t **ret) {
        json_t *v = json_object_get(q->body, key);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        bool ok = type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == type;
        if (!ok)
                return bad_body(q, kind, key,
                                type == JSON_TRUE      ? "a boolean"
                                : type == JSON_INTEGER ? "an integer"
                                : type == JSON_OBJECT  ? "an object"
                                                       : "a list");
        *ret = v;
        return 0;
}

/* dryRun: ["All"] checks the request and changes nothing (KubeVirt's DryRun of the options). */
static int dry_run(Sub *q, const char *kind) {
        json_t *v, *x;
        size_t i;
        int r = option(q, kind, "dryRun", JSON_ARRAY, &v);
        if (r < 0)
                return r;
        json_array_foreach(v, i, x) {
                if (!json_is_string(x))
                        return bad_body(q, kind, "dryRun", "a list of strings");
                if (streq(json_string_value(x), "All"))
                        q->dry_run = true;
        }
        return 0;
}

/* KubeVirt's VirtualMachine.RunStrategy(): running true Always, false Halted, neither Halted. */
static const char *run_strategy(json_t *vm) {
        json_t *spec = json_object_get(vm, "spec"), *running = json_object_get(spec, "running");
        const char *rs = json_string_value(json_object_get(spec, "runStrategy"));
        if (json_is_boolean(running))
                return json_is_true(running) ? "Always" : "Halted";
        return rs ? rs : "Halted";
}

static const char *phase(json_t *vmi) {
        const char *p = json_string_value(json_object_get(json_object_get(vmi, "status"), "phase"));
        return p ? p : "";
}

static bool is_final(json_t *vmi) {
        return streq(phase(vmi), "Succeeded") || streq(phase(vmi), "Failed");
}

/* spec.runStrategy Always/Halted, or spec.running true/false when the VM uses that (as KubeVirt's patch). */
static int set_running(Sub *q, json_t *vm, bool run) {
        KvErr e = {};
        _cleanup_json_ json_t *out = NULL,
                              *patch = json_object_get(json_object_get(vm, "spec"), "runStrategy")
                                               ? json_pack("{s:{s:s}}", "spec", "runStrategy", run ? "Always" : "Halted")
                                               : json_pack("{s:{s:b}}", "spec", "running", run);
        if (!patch)
                return internal(q, "out of memory");
        if (q->dry_run)
                return 0;
        if (ctl_store_patch(q->s, res_of("virtualmachines"), q->ns, q->name, patch, &out, &e) < 0)
                return internal(q, e.msg);
        log_info("VirtualMachine %s/%s: %s (%s)", q->ns, q->name, run ? "started" : "stopped",
                 json_object_get(json_object_get(vm, "spec"), "runStrategy") ? "runStrategy" : "running");
        return 0;
}

/* Deletes the VM's VMI, which the VM controller makes again when the VM should run; with make_new, makes the
 * new one here (runStrategy Manual: the controller leaves a Manual VM as it is). */
static int renew_vmi(Sub *q, json_t *vm, bool delete, bool make_new) {
        KvErr e = {};
        _cleanup_json_ json_t *gone = NULL, *made = NULL;
        if (q->dry_run)
                return 0;
        if (delete && ctl_store_delete(q->s, res_of("virtualmachineinstances"), q->ns, q->name, &gone, &e) < 0)
                return internal(q, e.msg);
        if (make_new && ctl_vm_create_vmi(q->s, vm, &made, &e) < 0)
                return internal(q, e.msg);
        log_info("VirtualMachine %s/%s: %s%s%s", q->ns, q->name, delete ? "VMI deleted" : "",
                 delete && make_new ? ", " : "", make_new ? "VMI created" : "");
        return 0;
}

static int vm_start(Sub *q, json_t *vm, json_t *vmi) {
        json_t *paused;
        if (vmi && !is_final(vmi) && !streq(phase(vmi), "Unknown") && phase(vmi)[0])
                return conflict(q, "virtualmachine", "VM is already running");
        int r = option(q, "StartOptions", "paused", JSON_TRUE, &paused);
        if (r < 0 || (r = dry_run(q, "StartOptions")) < 0)
                return r;
        if (json_is_true(paused))
                return fail(q, 501, "NotImplemented", -EOPNOTSUPP,
                            "starting a VM paused is not supported by kvnet's embedded API");
        const char *rs = run_strategy(vm);
        if (streq(rs, "Halted"))
                return set_running(q, vm, true);
        if (streq(rs, "RerunOnFailure")) {
                if (vmi && streq(phase(vmi), "Failed"))
                        return conflict(q, "virtualmachine", "RerunOnFailure does not support starting VM from failed state");
                /* a VMI that Succeeded is replaced; none: the VM controller makes it */
                return vmi && is_final(vmi) ? renew_vmi(q, vm, true, false) : 0;
        }
        if (streq(rs, "Manual"))
                return vmi && !is_final(vmi) ? 0 : renew_vmi(q, vm, vmi != NULL, true);
        return conflict(q, "virtualmachine", "%s does not support manual start requests", rs);
}

static int vm_stop(Sub *q, json_t *vm, json_t *vmi) {
        json_t *grace;
        KvErr e = {};
        int r = option(q, "StopOptions", "gracePeriod", JSON_INTEGER, &grace);
        if (r < 0)
                return r;
        bool running = vmi && !is_final(vmi);
        json_t *old = json_object_get(json_object_get(vmi, "spec"), "terminationGracePeriodSeconds");
        long long old_grace = json_integer_value(old);
        if (running && grace && !q->dry_run) {
                /* what the guest gets when it is stopped (kvnet-launcher's ACPI shutdown) */
                _cleanup_json_ json_t *out = NULL,
                                      *patch = json_pack("{s:{s:O}}", "spec", "terminationGracePeriodSeconds", grace);
                if (!patch || ctl_store_patch(q->s, res_of("virtualmachineinstances"), q->ns, q->name, patch, &out, &e) < 0)
                        return internal(q, patch ? e.msg : "out of memory");
        }
        const char *rs = run_strategy(vm);
        if (streq(rs, "Always") || streq(rs, "Once"))
                return set_running(q, vm, false);
        if (!running)
                return conflict(q, "virtualmachine", "VM is not running");
        if (streq(rs, "Halted") && (!grace || (old && json_integer_value(grace) >= old_grace)))
                return conflict(q, "virtualmachine", "Halted only supports manual stop requests with a shorter graceperiod");
        if (streq(rs, "RerunOnFailure"))
                /* KubeVirt keeps the VM stopped by a state change request the VM controller here does not have */
                return fail(q, 501, "NotImplemented", -EOPNOTSUPP,
                            "stopping a RerunOnFailure VM is not supported by kvnet's embedded API: set its "
                            "spec.runStrategy to Halted");
        return renew_vmi(q, vm, true, false); /* Manual, or Halted with a VMI of its own */
}

static int vm_restart(Sub *q, json_t *vm, json_t *vmi) {
        const char *rs = run_strategy(vm);
        if (streq(rs, "Halted") || streq(rs, "Once"))
                return conflict(q, "virtualmachine", "RunStategy %s does not support manual restart requests", rs);
        if (!vmi)
                return conflict(q, "virtualmachine", "VM is not running: Halted");
        return renew_vmi(q, vm, true, streq(rs, "Manual"));
}

static int vm_migrate(Sub *q, json_t *vm, json_t *vmi) {
        json_t *sel;
        KvErr e = {};
        int r = option(q, "MigrateOptions", "addedNodeSelector", JSON_OBJECT, &sel);
        if (r < 0)
                return r;
        (void) vm;
        if (!streq(phase(vmi), "Running"))
                return conflict(q, "virtualmachine", "VM is not running");
        _cleanup_json_ json_t *out = NULL,
                              *vmim = json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "kubevirt.io/v1", "kind",
                                                "VirtualMachineInstanceMigration", "metadata", "generateName",
                                                "kubevirt-migrate-vm-", "spec", "vmiName", q->name);
        if (!vmim)
                return internal(q, "out of memory");
        if (sel)
                json_object_set(json_object_get(vmim, "spec"), "addedNodeSelector", sel);
        if (q->dry_run)
                return 0;
        if (ctl_store_create(q->s, res_of("virtualmachineinstancemigrations"), q->ns, vmim, &out, &e) < 0)
                return internal(q, e.msg);
        log_info("VirtualMachine %s/%s: migration %s created", q->ns, q->name, ctl_md(out, "name"));
        return 0;
}

/* pause / unpause, KubeVirt's checks and words: the VMI is marked (HDL_PAUSE_ANNOTATION); its node's agent has the
 * launcher pause or resume the domain, and the VMI's Paused condition follows (handler/vmistatus.c). */
static int vmi_pause(Sub *q, json_t *vmi, bool pause) {
        json_t *st = json_object_get(vmi, "status");
        bool running = streq_ptr(json_string_value(json_object_get(st, "phase")), "Running");
        bool paused = kstatus_condition(st, "Paused") != NULL;
        if (pause) {
                /* (KubeVirt's 403 for a VMI with a liveness probe cannot happen: kvnet refuses probes at creation) */
                if (!running)
                        return conflict(q, "virtualmachineinstance", "VM is not running");
                if (paused)
                        return conflict(q, "virtualmachineinstance", "VMI is already paused");
        } else if (!running || !paused)
                return conflict(q, "virtualmachineinstance", "VMI is not paused");
        if (q->dry_run)
                return 0;
        _cleanup_json_ json_t *patch = json_pack("{s:{s:{s:o}}}", "metadata", "annotations", HDL_PAUSE_ANNOTATION,
                                                 pause ? json_string("true") : json_null());
        _cleanup_json_ json_t *out = NULL;
        KvErr e = {};
        if (!patch)
                return internal(q, "out of memory");
        if (ctl_store_patch(q->s, res_of("virtualmachineinstances"), q->ns, q->name, patch, &out, &e) < 0)
                return internal(q, e.msg);
        log_info("VirtualMachineInstance %s/%s: %s requested", q->ns, q->name, pause ? "pause" : "unpause");
        return 0;
}

int ctl_subresource(CtlStore *s, const char *plural, const char *ns, const char *name, const char *verb,
                    json_t *body, unsigned *ret_code, const char **ret_reason, KvErr *e) {
        Sub q = { .s = s, .ns = ns, .name = name, .body = body, .code = 500, .reason = "InternalError", .e = e };
        _cleanup_json_ json_t *vm = NULL, *vmi = NULL;
        int r = 0;
        static const struct {
                const char *verb, *options;
                int (*fn)(Sub *q, json_t *vm, json_t *vmi);
                bool needs_vmi;
        } verbs[] = {
                { "start", "StartOptions", vm_start, false },
                { "stop", "StopOptions", vm_stop, false },
                { "restart", "RestartOptions", vm_restart, false },
                { "migrate", "MigrateOptions", vm_migrate, true },
        };
        if (body && !json_is_object(body))
                r = fail(&q, 400, "BadRequest", -EINVAL, "Can not unmarshal Request body to struct, error: "
                         "the body must be a JSON object, got %s", json_type_name(body));
        else if (streq(plural, "virtualmachineinstances")) {
                bool pause = streq(verb, "pause");
                if (!pause && !streq(verb, "unpause"))
                        r = -ENOENT;
                else if ((r = dry_run(&q, pause ? "PauseOptions" : "UnpauseOptions")) >= 0)
                        r = (vmi = fetch(&q, plural, true)) ? vmi_pause(&q, vmi, pause) : -ENOENT;
        } else {
                r = -ENOENT; /* not a verb of virtualmachines */
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                        if (!streq(verb, verbs[i].verb))
                                continue;
                        json_t *grace;
                        r = 0;
                        /* the restart's options are checked before the VM is looked at, as KubeVirt does */
                        if (streq(verb, "restart") &&
                            (r = option(&q, "RestartOptions", "gracePeriodSeconds", JSON_INTEGER, &grace)) >= 0 && grace)
                                r = json_integer_value(grace) > 0
                                            ? fail(&q, 400, "BadRequest", -EINVAL,
                                                   "For force restart, only gracePeriod=0 is supported for now")
                                    : json_integer_value(grace) < 0
                                            ? fail(&q, 400, "BadRequest", -EINVAL,
                                                   "gracePeriod has to be greater or equal to 0")
                                            : 0;
                        if (r >= 0 && !streq(verb, "start"))
                                r = dry_run(&q, verbs[i].options);
                        if (r >= 0 && !(vm = fetch(&q, "virtualmachines", true)))
                                r = -ENOENT;
                        if (r >= 0 && !(vmi = fetch(&q, "virtualmachineinstances", verbs[i].needs_vmi)) &&
                            verbs[i].needs_vmi)
                                r = -ENOENT;
                        if (r >= 0)
                                r = verbs[i].fn(&q, vm, vmi);
                        break;
                }
                if (r == -ENOENT && !q.e->msg[0])
                        fail(&q, 404, "NotFound", -ENOENT, "the server could not find the requested resource");
        }
        *ret_code = r < 0 ? q.code : 202;
        *ret_reason = q.reason;
        return r;
}
