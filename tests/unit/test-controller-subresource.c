/* SPDX-License-Identifier: Apache-2.0 */
/* KubeVirt's subresources (controller/subresource.c) on a real store, the cases test-virtctl.sh does not reach
 * with virtctl: RerunOnFailure and Once, Halted with a grace period, the grace period written to the VMI,
 * the options' types, dryRun of a migration and of a pause, pause and unpause, a verb or VM that does not exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "common/json-util.h"

#include "controller/store.h"
#include "controller/subresource.h"

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vm, *vmi, *vmim;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        fx->vmim = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations");
        *state = fx;
        return 0;
}

static void create(Fx *fx, const CtlResource *r, const char *text) {
        _cleanup_json_ json_t *in = ctl_fx_parse(text), *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_create(fx->s, r, "default", in, &out, &e), 0);
}

static void set_phase(Fx *fx, const char *phase) {
        _cleanup_json_ json_t *st = json_pack("{s:s}", "phase", phase);
        KvErr e = {};
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "web", st, &e), 0);
}

/* A VM of that run strategy ("runStrategy":"X" or "running":b) and, with phase, a VMI of it in that phase. */
static void vm_with(Fx *fx, const char *run, const char *phase) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"web\"},\"spec\":{%s,\"template\":{\"spec\":{\"domain\":{\"devices\":{},"
                 "\"memory\":{\"guest\":\"64Mi\"}}}}}}",
                 run);
        create(fx, fx->vm, text);
        if (!phase)
                return;
        create(fx, fx->vmi,
               "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"terminationGracePeriodSeconds\":30,\"domain\":"
               "{\"devices\":{},\"memory\":{\"guest\":\"64Mi\"}}}}");
        set_phase(fx, phase);
}

/* One request: its HTTP status (202 when accepted), its message in msg. */
static unsigned request(Fx *fx, const char *plural, const char *name, const char *verb, const char *body, char msg[512]) {
        _cleanup_json_ json_t *b = body ? json_loads(body, JSON_DECODE_ANY, NULL) : NULL;
        unsigned code = 0;
        const char *reason = NULL;
        KvErr e = {};
        int r = ctl_subresource(fx->s, plural, "default", name, verb, b, &code, &reason, &e);
        assert_true(r < 0 ? code >= 400 : code == 202);
        snprintf(msg, 512, "%s", r < 0 ? e.msg : "");
        return code;
}

static json_t *get(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = NULL;
        return ctl_store_get(fx->s, r, "default", name, &o) == 0 ? o : NULL;
}

static void test_rerun_once_halted(void **state) {
        Fx *fx = *state;
        char msg[512];
        vm_with(fx, "\"runStrategy\":\"RerunOnFailure\"", "Failed");
        assert_int_equal(request(fx, "virtualmachines", "web", "start", NULL, msg), 409);
        assert_string_equal(msg, "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"web\": RerunOnFailure does "
                                 "not support starting VM from failed state");
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "{}", msg), 409); /* Failed: not running */
        /* a Succeeded VMI is replaced: deleted here, made again by the VM controller */
        set_phase(fx, "Succeeded");
        assert_int_equal(request(fx, "virtualmachines", "web", "start", "{}", msg), 202);
        assert_null(get(fx, fx->vmi, "web"));
}

static void test_strategies(void **state) {
        Fx *fx = *state;
        char msg[512];
        vm_with(fx, "\"runStrategy\":\"Once\"", "Running");
        assert_int_equal(request(fx, "virtualmachines", "web", "restart", NULL, msg), 409);
        assert_string_equal(msg, "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"web\": RunStategy Once does "
                                 "not support manual restart requests");
        /* a stop with a grace period: written to the running VMI first, then runStrategy Halted */
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "{\"gracePeriod\":5}", msg), 202);
        _cleanup_json_ json_t *vm = get(fx, fx->vm, "web"), *vmi = get(fx, fx->vmi, "web");
        assert_string_equal(json_string_value(json_object_get(json_object_get(vm, "spec"), "runStrategy")), "Halted");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(vmi, "spec"), "terminationGracePeriodSeconds")), 5);
        /* Halted with its VMI still there (no controller pass here): only a shorter grace period stops it */
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "{\"gracePeriod\":5}", msg), 409);
        assert_string_equal(msg, "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"web\": Halted only "
                                 "supports manual stop requests with a shorter graceperiod");
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "{\"gracePeriod\":1}", msg), 202);
        json_t *left = get(fx, fx->vmi, "web");
        assert_null(left);
        /* Always refuses start, RerunOnFailure's stop is not supported */
        _cleanup_json_ json_t *p1 = ctl_fx_parse("{\"spec\":{\"runStrategy\":\"Always\"}}"), *o1 = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p1, &o1, &e), 0);
        assert_int_equal(request(fx, "virtualmachines", "web", "start", NULL, msg), 409);
        assert_string_equal(msg, "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"web\": Always does not "
                                 "support manual start requests");
        _cleanup_json_ json_t *p2 = ctl_fx_parse("{\"spec\":{\"runStrategy\":\"RerunOnFailure\"}}"), *o2 = NULL;
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", "web", p2, &o2, &e), 0);
        create(fx, fx->vmi, "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"domain\":{\"devices\":{},\"memory\":{\"guest\":\"64Mi\"}}}}");
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", NULL, msg), 501);
}

static void test_options_and_errors(void **state) {
        Fx *fx = *state;
        char msg[512];
        assert_int_equal(request(fx, "virtualmachines", "nope", "start", NULL, msg), 404);
        assert_string_equal(msg, "virtualmachine.kubevirt.io \"nope\" not found");
        vm_with(fx, "\"running\":true", "Running");
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "[1]", msg), 400);
        assert_int_equal(request(fx, "virtualmachines", "web", "stop", "{\"gracePeriod\":\"5\"}", msg), 400);
        assert_string_equal(msg, "Can not unmarshal Request body to struct, error: StopOptions.gracePeriod must be an integer");
        assert_int_equal(request(fx, "virtualmachines", "web", "start", "{\"paused\":1}", msg), 409); /* running first */
        assert_int_equal(request(fx, "virtualmachines", "web", "migrate", "{\"dryRun\":\"All\"}", msg), 400);
        assert_int_equal(request(fx, "virtualmachines", "web", "restart", "{\"gracePeriodSeconds\":-1}", msg), 400);
        assert_string_equal(msg, "gracePeriod has to be greater or equal to 0");
        assert_int_equal(request(fx, "virtualmachines", "web", "rename", NULL, msg), 404);
        /* dryRun: checked, nothing created */
        assert_int_equal(request(fx, "virtualmachines", "web", "migrate", "{\"dryRun\":[\"All\"]}", msg), 202);
        _cleanup_json_ json_t *none = ctl_store_list(fx->s, fx->vmim, "default", NULL);
        assert_int_equal(json_array_size(json_object_get(none, "items")), 0);
        assert_int_equal(request(fx, "virtualmachines", "web", "migrate", "{\"addedNodeSelector\":{\"a\":\"b\"}}", msg), 202);
        _cleanup_json_ json_t *one = ctl_store_list(fx->s, fx->vmim, "default", NULL);
        json_t *m = json_array_get(json_object_get(one, "items"), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(m, "spec"),
                                                                              "addedNodeSelector"), "a")), "b");
        /* pause / unpause: the VMI must exist; the options checked; a dry run marks nothing; a pause marks the VMI
         * for its node; unpause needs the node's Paused condition */
        assert_int_equal(request(fx, "virtualmachineinstances", "nope", "pause", NULL, msg), 404);
        assert_string_equal(msg, "virtualmachineinstance.kubevirt.io \"nope\" not found");
        assert_int_equal(request(fx, "virtualmachineinstances", "web", "unpause", NULL, msg), 409);
        assert_string_equal(msg,
                            "Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io \"web\": VMI is not paused");
        assert_int_equal(request(fx, "virtualmachineinstances", "web", "pause", "{\"dryRun\":5}", msg), 400);
        assert_string_equal(msg, "Can not unmarshal Request body to struct, error: PauseOptions.dryRun must be a list");
        assert_int_equal(request(fx, "virtualmachineinstances", "web", "pause", "{\"dryRun\":[\"All\"]}", msg), 202);
        _cleanup_json_ json_t *vmi0 = NULL;
        assert_int_equal(ctl_store_get(fx->s, fx->vmi, "default", "web", &vmi0), 0);
        assert_null(json_object_get(json_object_get(vmi0, "metadata"), "annotations"));
        assert_int_equal(request(fx, "virtualmachineinstances", "web", "pause", NULL, msg), 202);
        _cleanup_json_ json_t *vmi1 = NULL;
        assert_int_equal(ctl_store_get(fx->s, fx->vmi, "default", "web", &vmi1), 0);
        assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(json_object_get(vmi1, "metadata"), "annotations"),
                                    "kvnet.io/pause-requested")),
                            "true");
        assert_true(ctl_subresource_known("virtualmachines", "migrate"));
        assert_false(ctl_subresource_known("virtualmachines", "pause"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_rerun_once_halted, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_strategies, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_options_and_errors, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
