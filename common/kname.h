/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes object names (RFC 1123, as the API server checks them), for every component that takes them as input. */
#pragma once

#include <stdbool.h>

/* A DNS label: 1..63 of [a-z0-9-], starting and ending alphanumeric (namespaces, most names). */
bool kv_dns_label_valid(const char *s);
/* A DNS subdomain: 1..253, dot-separated DNS labels (pod names, Lease names). */
bool kv_dns_subdomain_valid(const char *s);
