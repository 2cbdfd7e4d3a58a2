/* SPDX-License-Identifier: Apache-2.0 */
/* The published schema of kvnet's kinds (what KubeVirt's and Multus' CRDs publish): one table in
 * controller/schema.c, from which the server makes every form a client asks for — /openapi/v2 as JSON and as
 * gnostic's protobuf (kubectl's client-side validation and `kubectl explain` up to 1.26), /openapi/v3 as JSON
 * (`kubectl explain` from 1.27 on). The fields are those kvnet-launcher's parser knows (launcher/vmi/): the
 * ones it reads, the ones it ignores with a warning, and the ones it refuses (described as such, so that
 * the server's 422 names them rather than the client's "unknown field"). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The definitions as OpenAPI v2 JSON ({"io.kubevirt.v1.VirtualMachine": {...}, ...}), each with its
 * x-kubernetes-group-version-kind; group and version select (NULL: all). New reference, NULL when out of
 * memory. */
json_t *ctl_schema_definitions(const char *group, const char *version);

/* The openAPIV3Schema of kind's CustomResourceDefinition, from the same table: structural (every node typed;
 * x-kubernetes-preserve-unknown-fields only where the table says the content is free-form, quantities
 * x-kubernetes-int-or-string), the root metadata only "type: object" as the API server requires. New reference;
 * NULL for a kind not in the table, or out of memory. */
json_t *ctl_schema_crd(const char *kind);

/* The whole /openapi/v2 document (JSON), title and version in its info. */
json_t *ctl_openapi_v2_json(const char *title, const char *version);
/* The same document as gnostic's openapi_v2.Document protobuf, which kubectl asks for. Caller frees *ret.
 * -ENOMEM. */
int ctl_openapi_v2_proto(const char *title, const char *version, uint8_t **ret, size_t *ret_len);
/* /openapi/v3: the index of group-versions ({"paths": {"apis/G/V": {"serverRelativeURL": ...}}}) and one
 * group-version's document (NULL when it has no kinds here). */
json_t *ctl_openapi_v3_index(const char *hash);
json_t *ctl_openapi_v3_gv(const char *group, const char *version, const char *title, const char *server_version);
