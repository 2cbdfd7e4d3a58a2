/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-node's Kubernetes Events (docs/events.md): what the node side tells about the VMIs and launcher pods it
 * runs, as virt-handler and kubelet do — the VMI started, its network attached (interfaces, addresses, MACs),
 * stopped or failed; the launcher pod's container started or failed. Recorded through kube/event.c (deduplicated,
 * rate-limited per object) and posted on the agent's loop, best effort. */
#pragma once

#include <jansson.h>

#include "kube/event.h"
#include "kube/kube.h"

/* The Events a change of a VMI's status from old to new calls for (either may be NULL): an array of {type, reason,
 * message} (new reference, possibly empty; NULL when out of memory). node: this node's name. Pure. */
json_t *agent_vmi_events(json_t *old, json_t *new_, const char *node);
/* The same for a launcher pod's phase going from old_phase to new_phase (message: the failure's, or NULL). */
json_t *agent_pod_events(const char *old_phase, const char *new_phase, const char *message);

typedef struct AgentEvents AgentEvents;

/* Events posted through kc on its loop as component "kvnet-node" from host node. */
int agent_events_new(KubeClient *kc, const char *node, AgentEvents **ret) _wur_;
/* Cancels the posts still in flight: before the client is freed. */
AgentEvents *agent_events_free(AgentEvents *ev);
/* Records each {type, reason, message} of list (borrowed; NULL or empty: nothing) about obj. */
void agent_events_post(AgentEvents *ev, const KubeObjectRef *obj, json_t *list);
KubeEventStats agent_events_stats(AgentEvents *ev);
