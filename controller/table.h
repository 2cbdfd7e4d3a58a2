/* SPDX-License-Identifier: Apache-2.0 */
/* kubectl's tables (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): the columns `kubectl get`
 * prints for each kind — KubeVirt's CRDs' additionalPrinterColumns, and kube-apiserver's own printers for
 * Pods and Nodes (with the priority-1 columns of `-o wide`). */
#pragma once

#include <jansson.h>

#include "controller/store.h"

/* A meta.k8s.io Table (api_version: "meta.k8s.io/v1" or "…/v1beta1") of the objects in items; include is
 * the request's includeObject (None, Object, or Metadata when NULL); rv the list's resourceVersion. */
json_t *ctl_table(const CtlResource *res, json_t *items, const char *api_version, const char *include,
                  const char *rv);

/* The same columns as a CustomResourceDefinition's additionalPrinterColumns ({name, type, jsonPath[,
 * priority]}; the Name column is the server's own), for kind; an empty array for a kind without columns, NULL
 * out of memory. */
json_t *ctl_table_crd_columns(const char *kind);
