/* SPDX-License-Identifier: Apache-2.0 */
/* KubeVirt's subresources.kubevirt.io API, the verbs virtctl sends (docs/controller.md): PUT on
 * virtualmachines/NAME/start, stop, restart and migrate, with KubeVirt's rules of which run strategy takes
 * which request and its refusals; virtualmachineinstances/NAME/pause and unpause are refused as not
 * supported. What virt-api does through virt-controller's state change requests is done here on the store
 * at once: a start or stop changes spec.runStrategy (or spec.running, whichever the VM uses), a restart
 * deletes the VMI for the VM controller to make it again, a migrate creates a VirtualMachineInstanceMigration
 * for the migration controller. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/kverr.h"
#include "controller/store.h"

#define CTL_SUBRESOURCE_GROUP "subresources.kubevirt.io"

/* One request: plural is "virtualmachines" or "virtualmachineinstances", verb the last path segment, body
 * the request's JSON (the verb's options: StartOptions, StopOptions, RestartOptions, MigrateOptions; NULL
 * when there was none). 0 when accepted (HTTP 202); else the HTTP status in *ret_code (400, 404, 409, 500,
 * 501) and its Status reason in *ret_reason, with the message in e as KubeVirt words it. */
int ctl_subresource(CtlStore *s, const char *plural, const char *ns, const char *name, const char *verb,
                    json_t *body, unsigned *ret_code, const char **ret_reason, KvErr *e);

/* Whether plural/verb is one of the subresources served (also those answered "not supported"). */
bool ctl_subresource_known(const char *plural, const char *verb);

/* The APIResourceList entries of the group (v1 and v1alpha3), as KubeVirt lists them. New reference. */
json_t *ctl_subresource_list(void);
