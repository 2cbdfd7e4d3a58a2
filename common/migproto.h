/* SPDX-License-Identifier: Apache-2.0 */
/* The migration messages between a launcher and its node's netd (docs/protocol.md, "Migration verbs"):
 * `migration-source` (the source launcher: begin, switchover, completed, aborted) and `migration-activate`
 * (the target launcher, when the VM resumes), and their replies. One typed definition for both ends: the
 * launcher sends with *_to_json(), netd parses with *_from_json(), which checks every field and names it
 * in its error ("migration-source: 'phase' must be begin, switchover, completed or aborted, got 'x'").
 *
 * Strings of a parsed message are owned copies (free them with the *_done() function); to_json only reads
 * them, so a sender may point them at its own strings. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"

#define MIGPROTO_SOURCE "migration-source"
#define MIGPROTO_ACTIVATE "migration-activate"

typedef enum MigPhase {
        MIG_PHASE_BEGIN,      /* the migration starts */
        MIG_PHASE_SWITCHOVER, /* the source QEMU paused the VM for the last pass */
        MIG_PHASE_COMPLETED,  /* the VM runs on the target */
        MIG_PHASE_ABORTED,    /* the VM stays on the source */
        _MIG_PHASE_MAX,
        _MIG_PHASE_INVALID = -EINVAL,
} MigPhase;

const char *mig_phase_to_string(MigPhase p);
/* _MIG_PHASE_INVALID for NULL or an unknown name. */
MigPhase mig_phase_from_string(const char *s);

/* The VM a message is about: both required, neither empty. */
typedef struct MigVmRef {
        char *vm_namespace;
        char *vm_name;
} MigVmRef;

/* migration-source {"vmNamespace","vmName","phase","target"?,"downtimeMs"?,"totalMs"?,"reason"?} */
typedef struct MigSourceMsg {
        MigVmRef vm;
        MigPhase phase;
        char *target;                    /* the destination (launcher: its URI); NULL = absent */
        char *reason;                    /* NULL = absent */
        long long downtime_ms, total_ms; /* QEMU's figures, 0..86400000; -1 = absent */
} MigSourceMsg;

/* migration-activate {"vmNamespace","vmName"} */
typedef struct MigActivateMsg {
        MigVmRef vm;
} MigActivateMsg;

/* Reply to migration-source: {"endpoints"}, and after a switchover {"endpoints","redirected"}. */
typedef struct MigSourceReply {
        unsigned endpoints;       /* attachments of the VM the phase applied to */
        bool has_redirected;      /* switchover only */
        unsigned redirected;      /* attachments whose packets go to the target from now on */
} MigSourceReply;

/* Reply to migration-activate. */
typedef struct MigActivateReply {
        unsigned endpoints;        /* attachments activated by this call */
        unsigned already_active;   /* attachments found active (the guest's first frame came first) */
        unsigned announcements;    /* gratuitous ARP / unsolicited NA frames sent */
        uint64_t switch_us;        /* the datapath part */
        uint64_t activate_us;      /* all of it */
        uint64_t early_packets;    /* packets the migration redirect forwarded before the resume */
} MigActivateReply;

void mig_source_msg_done(MigSourceMsg *m);
void mig_activate_msg_done(MigActivateMsg *m);

/* NULL on ENOMEM. */
json_t *mig_source_msg_to_json(const MigSourceMsg *m);
json_t *mig_activate_msg_to_json(const MigActivateMsg *m);
json_t *mig_source_reply_to_json(const MigSourceReply *r);
json_t *mig_activate_reply_to_json(const MigActivateReply *r);

/* args: the request's "args" (may be NULL). *ret is filled only on success. */
int mig_source_msg_from_json(json_t *args, MigSourceMsg *ret, KvErr *e) _wur_;
int mig_activate_msg_from_json(json_t *args, MigActivateMsg *ret, KvErr *e) _wur_;
int mig_source_reply_from_json(json_t *result, MigSourceReply *ret, KvErr *e) _wur_;
int mig_activate_reply_from_json(json_t *result, MigActivateReply *ret, KvErr *e) _wur_;
