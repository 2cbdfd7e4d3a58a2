/* SPDX-License-Identifier: Apache-2.0 */
/* The controllers' Kubernetes Events (docs/events.md): what the VM, scheduler and migration controllers tell about
 * VMs, VMIs, VMIMs and launcher pods, recorded through kube/event.c (deduplicated, rate-limited per object) and
 * written through the store: into the embedded API, or to the real API server in cluster mode. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "common/kverr.h"
#include "controller/store.h"

#define CTL_EVENT_COMPONENT "kvnet-controller"
/* kube-apiserver's --event-ttl default: the embedded API keeps an Event this long after its last occurrence */
#define CTL_EVENT_TTL_S 3600

/* A recorder for s (component, host: the instance, NULL for none), kept by the store. */
int ctl_events_open(CtlStore *s, const char *component, const char *host, KvErr *e) _wur_;
/* An Event about obj, an object of res (borrowed; its apiVersion and kind when it has none); nothing when the store
 * has no recorder. A failure is logged at debug level: an Event never changes what the controller does. */
void ctl_event(CtlStore *s, const CtlResource *res, json_t *obj, const char *type, const char *reason,
               const char *fmt, ...) _printf_(6, 7);
/* As ctl_event(), about the stored object ns/name of res (nothing when there is none). */
void ctl_event_at(CtlStore *s, const CtlResource *res, const char *ns, const char *name, const char *type,
                  const char *reason, const char *fmt, ...) _printf_(7, 8);
/* The embedded API's Events whose lastTimestamp is more than ttl_s seconds before now_s (seconds since the epoch)
 * deleted, as kube-apiserver lets them expire: how many. */
int ctl_events_expire(CtlStore *s, int64_t now_s, unsigned ttl_s);
