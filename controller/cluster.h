/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster mode (docs/controller.md, "Cluster mode"): the same controllers on a real Kubernetes API server. The
 * store is a mirror (ctl_store_open_mirror()) filled by one informer per kind the controllers read — VMs, VMIs,
 * migrations, NADs, IPAMClaims, nodes, and the launcher pods (label kubevirt.io=virt-launcher) — and every write
 * is a request to the API server, whose answer the mirror takes at once. The controllers start when every
 * informer has listed, and with leader election only while this replica holds the Lease. Each pass of the
 * controllers runs on a thread of its own (its writes are blocking requests): the loop goes on with the informers,
 * whose changes wait for the pass's end, and the lease, whose loss refuses every write from then on. */
#pragma once

#include "common/event.h"
#include "common/kverr.h"
#include "controller/reconciler.h"

typedef struct CtlClusterOpts {
        const char *kubeconfig;        /* NULL: kube_config_load()'s default ($KUBECONFIG, ~/.kube/config, in-cluster) */
        const ctl_reconcile_fn *fns;   /* the controllers, as for ctl_reconciler_new() */
        size_t n_fns;
        bool leader_elect;
        const char *lease_namespace;   /* default "kvnet-system" */
        const char *lease_name;        /* default "kvnet-controller" */
        const char *identity;          /* default <hostname>_<pid> */
        unsigned lease_ms, renew_deadline_ms, retry_ms; /* 0: the defaults (15 s, 10 s, 2 s) */
        double api_qps;                /* the client's token bucket: requests a second; 0: CTL_CLUSTER_QPS */
        unsigned api_burst;            /* ... and how many may be saved up; 0: CTL_CLUSTER_BURST */
} CtlClusterOpts;

/* KubeVirt's virt-controller defaults: every object change is a request, and a controller that falls behind its
 * bucket makes VMs wait (1,000 VMs ~10 requests each: 200 s at 50/s). */
#define CTL_CLUSTER_QPS 200.0
#define CTL_CLUSTER_BURST 400u

typedef struct CtlCluster CtlCluster;

/* Starts the informers on loop; the controllers follow (see above). A lost leadership ends the loop with
 * -ENOLINK (the process exits and is restarted, as client-go's controllers do). */
int ctl_cluster_new(EventLoop *loop, const CtlClusterOpts *o, CtlCluster **ret, KvErr *e) _wur_;
/* Gives the Lease back when this replica holds it, and stops everything. */
CtlCluster *ctl_cluster_free(CtlCluster *c);
/* The mirror the controllers work on (to attach the metrics to before they start). */
CtlStore *ctl_cluster_store(CtlCluster *c);
