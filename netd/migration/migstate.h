/* SPDX-License-Identifier: Apache-2.0 */
/* A migration as one node sees it: this node's role and how far the migration got (netd/migration/handoff.h).
 * The names are what the endpoint records, the migration history (STATE_DIR/migrations.json) and the
 * `migrations` verb carry. */
#pragma once

#include <errno.h>

typedef enum MigRole {
        MIG_ROLE_NONE,   /* "" */
        MIG_ROLE_SOURCE, /* the VM leaves this node */
        MIG_ROLE_TARGET, /* the VM comes to this node */
        _MIG_ROLE_MAX,
        _MIG_ROLE_INVALID = -EINVAL,
} MigRole;

typedef enum MigState {
        MIG_STATE_NONE,      /* "" */
        MIG_STATE_PREPARED,  /* target: passive datapath built */
        MIG_STATE_MIGRATING, /* source: libvirt is migrating the VM */
        MIG_STATE_SWITCHING, /* source: the VM paused for the last pass */
        MIG_STATE_ACTIVE,    /* target: the VM runs here */
        MIG_STATE_COMPLETED, /* source: the VM left */
        MIG_STATE_ABORTED,   /* the VM stayed on the source */
        _MIG_STATE_MAX,
        _MIG_STATE_INVALID = -EINVAL,
} MigState;

const char *mig_role_to_string(MigRole r);
MigRole mig_role_from_string(const char *s); /* _MIG_ROLE_INVALID for NULL or an unknown name */
const char *mig_state_to_string(MigState s);
MigState mig_state_from_string(const char *s); /* _MIG_STATE_INVALID for NULL or an unknown name */
