/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes' protobuf request bodies (application/vnd.kubernetes.protobuf), decoded to the JSON the store
 * keeps. client-go programs that set `ContentType = application/vnd.kubernetes.protobuf` (Multus does, for
 * every core-group request) send the object as the 4 bytes "k8s\0" and a runtime.Unknown envelope
 * {typeMeta {apiVersion, kind}, raw, contentEncoding, contentType} whose raw is the object's message from
 * k8s.io/api's generated.proto. The kinds decoded are those a client of the embedded API writes that way:
 *
 *   Pod    metadata (ObjectMeta) and status (PodStatus); the spec is recognised but not decoded (the
 *          pods/status subresource takes no spec, as kube-apiserver's status strategy keeps the stored one),
 *          and *ret_spec_skipped says it was there, so that a create or update refuses it
 *   Event  every field of core v1 Event (what client-go's event recorder posts)
 *
 * Field names and JSON shapes are Kubernetes' (omitempty as in k8s.io/api's json tags: empty strings, zero
 * numbers and false are left out unless the field is always written or is a pointer, which is on the wire only
 * when set — `started: false`; times as RFC 3339). A field the
 * tables do not know, a wire type that does not match the field, or a truncated message is refused with the
 * message name, the field number and the offset: nothing is dropped silently. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/kverr.h"
#include "common/util.h"
#include "controller/store.h"

#define CTL_PROTO_CONTENT_TYPE "application/vnd.kubernetes.protobuf"

/* Whether the body of a request on res can be protobuf here. */
bool ctl_proto_supported(const CtlResource *res);

/* Decodes a protobuf body for res into *ret (a new JSON object with apiVersion and kind). -EPROTONOSUPPORT
 * for a kind not decoded here, -EINVAL (with e naming the field) for a malformed or unsupported body. */
int ctl_proto_decode(const CtlResource *res, const void *buf, size_t n, json_t **ret, bool *ret_spec_skipped,
                     KvErr *e) _wur_;
