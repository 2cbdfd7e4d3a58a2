/* SPDX-License-Identifier: Apache-2.0 */
/* The CustomResourceDefinitions a cluster needs for kvnet (deploy/crds/, made by `make deploy-crds`): KubeVirt's
 * three kinds (v1 stored, v1alpha3 served, as KubeVirt does), Multus's NetworkAttachmentDefinition, the
 * IPAMClaim of k8snetworkplumbingwg/ipamclaims and kvnet's own NetworkClaim. Names, scope and versions come from
 * the embedded API's resource table (controller/store.c), the schemas from controller/schema.c and the printer
 * columns from controller/table.c: one source for what the embedded API publishes and what a cluster installs. */
#pragma once

#include <jansson.h>

/* Every CRD, as apiextensions.k8s.io/v1 CustomResourceDefinition objects, in a new JSON array. -ENOMEM. */
int ctl_crds(json_t **ret);
