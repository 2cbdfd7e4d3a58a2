/* SPDX-License-Identifier: Apache-2.0 */
/* The target node's half of the early switchover (docs/migration.md, "The switchover"): while a migration
 * target is prepared here, packets the source node routes to this node for the VM's addresses are forwarded
 * by a tc program (ebpf/migredir.bpf.c) on the underlay interface straight into the target attachment, where
 * they wait for the guest to resume. The program is attached while at least one address is armed. Acts on
 * the caller's network namespace (the node's). */
#pragma once

#include <stdint.h>

#include "common/addr.h"
#include "common/kverr.h"

typedef struct MigRedir MigRedir;

/* Arms dst: forwarded out of out_ifindex with destination MAC dmac, source MAC smac. The first entry loads
 * the program and attaches it to the interface that carries node_addr (*pm created). Re-arming for the same
 * out_ifindex replaces the entry (counters restart); dst armed for another interface: -EEXIST. */
int migredir_add(MigRedir **pm, const KvAddr *node_addr, const KvAddr *dst, int out_ifindex,
                 const uint8_t dmac[6], const uint8_t smac[6], KvErr *e) _wur_;
/* Disarms dst if it is armed for out_ifindex: 1 (and the packets it forwarded in *ret_packets), 0 if not. The
 * last entry detaches the program and frees *pm. */
int migredir_del(MigRedir **pm, const KvAddr *dst, int out_ifindex, uint64_t *ret_packets);
/* Packets forwarded for dst so far: 1 if armed, 0 if not. */
int migredir_packets(const MigRedir *m, const KvAddr *dst, uint64_t *ret);
/* Name of the interface the program is on ("" when none is armed). */
const char *migredir_uplink(const MigRedir *m);
/* At start: a filter a previous run left on the interface carrying node_addr is removed (its map went
 * with that process; the attachments still to arm are armed again afterwards). */
void migredir_reset(const KvAddr *node_addr);
MigRedir *migredir_free(MigRedir *m);
