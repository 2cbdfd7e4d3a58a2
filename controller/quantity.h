/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes resource quantities ("128Mi", "1.5Gi", "500m", "2", "1e3"): the grammar of
 * k8s.io/apimachinery's resource.Quantity — a decimal number (optional sign, optional fraction) with a
 * binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (m, k, M, G, T, P, E) or a decimal exponent
 * (e3, E-2). Used for the scheduler's CPU and memory requests and the nodes' capacity. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/kverr.h"
#include "common/util.h"

/* The quantity s as an integer, rounded up: in units (milli = false: bytes, cores) or thousandths of units
 * (milli = true: millicores). -EINVAL naming field and s if it is not a quantity or is negative, -ERANGE
 * (same message form) if it does not fit in 63 bits. */
int ctl_quantity_parse(const char *field, const char *s, bool milli, uint64_t *ret, KvErr *e) _wur_;

/* Canonical forms, as Kubernetes prints them: memory in bytes as "NKi"/"NMi"/"NGi" when it is a whole
 * multiple, else "N"; CPU in millicores as "N" (whole cores) or "Nm". buf of at least 32 bytes. */
const char *ctl_quantity_format_bytes(uint64_t bytes, char buf[static 32]);
const char *ctl_quantity_format_milli(uint64_t milli, char buf[static 32]);
