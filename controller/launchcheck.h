/* SPDX-License-Identifier: Apache-2.0 */
/* Admission with kvnet-launcher's own parser: a VirtualMachineInstance, or a VirtualMachine's template, that
 * the launcher would refuse on a node is refused at create and update, so nothing is accepted that fails
 * later. The launcher's parse (launcher/vmi/, linked in parse-only: no libvirt, no file looked at) is the
 * one check; this file only frames the object for it and says which field an error names. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"

/* obj: a VirtualMachine or VirtualMachineInstance (kind says which) as the store is about to keep it. On
 * refusal -EINVAL (or the parser's error) with e->msg the launcher's message, prefixed by verb, and
 * e->details the field it names ("spec.template.spec.domain.devices.interfaces[0].slirp"), or "". */
int ctl_launcher_check(json_t *obj, const char *kind, const char *verb, KvErr *e) _wur_;

/* The field of the object ("spec…", "metadata…") a "PATH: message" or "PATH: 'key' must ..." error names,
 * into buf ("" when none). */
const char *ctl_error_field(const char *msg, char *buf, size_t n);
