/* SPDX-License-Identifier: Apache-2.0 */
/* The parts of a Kubernetes object's status that every kind writes the same way: conditions (one per type,
 * lastTransitionTime kept while the condition's status does not change) and RFC 3339 times. Used by the
 * controller and by the node side (handler/). */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "common/util.h"

typedef struct KCondition {
        const char *type;    /* "Ready", "LiveMigratable", "PodScheduled", ... */
        const char *status;  /* "True", "False", "Unknown" */
        const char *reason;  /* NULL = none */
        const char *message; /* NULL = none */
} KCondition;

/* Now (or t seconds since the epoch when t > 0) as Kubernetes writes times: "2026-01-02T03:04:05Z". */
const char *kstatus_time(int64_t t, char buf[static 32]);
/* Such a time (fractional seconds and the zone suffix ignored: Kubernetes writes UTC) as seconds since the epoch;
 * -1 for NULL or something else. */
int64_t kstatus_parse_time(const char *s);

/* Sets condition c in status.conditions (status is an object; the array is made when missing), replacing the
 * one of the same type. Its lastTransitionTime is now unless the condition had the same status before.
 * Returns 1 when the condition changed (status, reason or message), 0 when it was so already, -ENOMEM. */
int kstatus_set_condition(json_t *status, const KCondition *c) _wur_;

/* Removes the condition of that type from status.conditions; 1 if there was one, else 0. */
int kstatus_remove_condition(json_t *status, const char *type);

/* The condition of that type in status, or NULL. */
json_t *kstatus_condition(json_t *status, const char *type);
