/* SPDX-License-Identifier: Apache-2.0 */
/* multus-compat: Multus's inputs and outputs as kvnet reads and writes them (docs/multus.md).
 *
 *   annotation.c  k8s.v1.cni.cncf.io/networks (every form Multus accepts) and v1.multus-cni.io/default-network
 *   nad.c         a NetworkAttachmentDefinition → the CNI conflist a delegate runs (spec.config, conf dir)
 *   config.c      the meta plugin's own config: Multus's thin-plugin keys
 *   caps.c        a selection's ips/mac/portMappings/bandwidth/... as runtimeConfig capability args
 *   status.c      a delegate's CNI result → k8s.v1.cni.cncf.io/network-status entries
 *   cache.c       what ADD attached, per container, so that DEL needs neither the pod nor the NADs
 *   event.c       core v1 Events about a pod (AddedInterface, NoNetworkFound), as Multus's recorder posts them
 *   aux.c         the auxiliaryCNIChainName chain: its conflist from the plugin files of a subdirectory
 *
 * Everything is parsed at this boundary into the typed structs below; no json_t leaves it. Errors are a
 * KvErr with a CNI code and a message naming the field and the value; functions return >= 0 or -errno.
 * Nothing here does I/O except mc_nad_conflist() (reads the conf dir when a NAD has no config), mc_aux_conflist()
 * and the cache's load/save. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/kverr.h"
#include "common/util.h"

#define MC_NETWORKS_ANNOT "k8s.v1.cni.cncf.io/networks"
#define MC_DEFAULT_NETWORK_ANNOT "v1.multus-cni.io/default-network"
#define MC_NETWORK_STATUS_ANNOT "k8s.v1.cni.cncf.io/network-status"
#define MC_RESOURCE_NAME_ANNOT "k8s.v1.cni.cncf.io/resourceName"

#define MC_ANNOT_MAX (64u * 1024u) /* an annotation larger than this is refused */
#define MC_NETWORKS_MAX 32         /* networks one pod may request */
#define MC_IFNAME_MAX 15           /* IFNAMSIZ - 1 */
#define MC_CONFIG_MAX (1u << 20)   /* a plugin config, a NAD object, a cache file */

/* ---------------------------------------------------------------- selections (the networks annotation) */

typedef struct McPortMapping {
        long long host_port, container_port;
        char *protocol; /* NULL when not given */
        char *host_ip;  /* NULL when not given */
} McPortMapping;

typedef struct McBandwidth {
        long long ingress_rate, ingress_burst, egress_rate, egress_burst;
} McBandwidth;

/* One element of the networks annotation (Multus's NetworkSelectionElement). Absent strings are NULL. */
typedef struct McSelection {
        char *name;
        char *namespace_; /* defaulted to the pod's namespace */
        char *interface;  /* "interface" (or the pre-3.2 "interfaceRequest"); NULL: net<N> */
        char **ips;       /* "ips": addresses or CIDRs, as given */
        size_t n_ips;
        char *mac;
        char *infiniband_guid;
        char *device_id;
        char *ipam_claim_reference;
        bool has_default_route; /* "default-route" present (it may be empty) */
        char **gateways;        /* its gateway addresses */
        size_t n_gateways;
        McPortMapping *port_mappings;
        size_t n_port_mappings;
        bool has_bandwidth;
        McBandwidth bandwidth;
        char *cni_args; /* "cni-args": a JSON object as compact text, merged into args.cni of the config */
} McSelection;

/* Parses the networks annotation: "a, b", "ns/a", "a@if1", "ns/a@if1" or a JSON list of objects (the text
 * holds '[', '{' or '"'). Namespaces default to default_ns. KV_ERR_DECODE / KV_ERR_INVALID_CONFIG naming
 * the element and field: "networks[1].mac: invalid MAC 'zz'". */
int mc_networks_parse(const char *text, const char *default_ns, McSelection **ret, size_t *ret_n, KvErr *e) _wur_;
/* The default-network override: the same forms, exactly one element; namespace default multus_ns. */
int mc_default_network_parse(const char *text, const char *multus_ns, McSelection **ret, KvErr *e) _wur_;
void mc_selection_done(McSelection *s);
void mc_selections_free(McSelection *v, size_t n);

/* Validators (for tests and the plugin). */
bool mc_dns1123_label(const char *s);
bool mc_dns1123_subdomain(const char *s);
bool mc_ifname_valid(const char *s);

/* ---------------------------------------------------------------- NetworkAttachmentDefinitions */

typedef struct McNad {
        char *namespace_, *name;
        char *resource_name; /* the k8s.v1.cni.cncf.io/resourceName annotation, NULL when none */
        char *config;        /* spec.config as given, NULL/"" when absent: the conf dir's file of that name */
} McNad;

/* A k8s.cni.cncf.io/v1 NetworkAttachmentDefinition object (JSON). */
int mc_nad_parse(const char *text, size_t len, McNad **ret, KvErr *e) _wur_;
McNad *mc_nad_free(McNad *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(McNad *, mc_nad_free);

/* The conflist a delegate for nad runs, as compact JSON text: spec.config as a single plugin or a list,
 * normalised to a list named by the config ("name") or else the NAD; an empty config is the file in
 * conf_dir whose network name is the NAD's. The selection's cni-args (sel may be NULL) are merged into
 * each plugin's args.cni; a device_id (NULL: none) is set as each plugin's deviceID and pciBusID, as
 * Multus does with a device plugin's device. */
int mc_nad_conflist(const McNad *nad, const McSelection *sel, const char *conf_dir, const char *device_id,
                    char **ret, KvErr *e) _wur_;
/* Normalises one CNI config text (single plugin or list) to a list; name_default when it has no name;
 * cni_args (JSON object text or NULL) merged into each plugin's args.cni. what names it in errors. */
int mc_conflist_normalize(const char *text, size_t len, const char *what, const char *name_default,
                          const char *cni_args, const char *device_id, char **ret, KvErr *e) _wur_;
/* The config in dir whose "name" is name (*.conf, *.conflist, *.json, lexically; name NULL: the first),
 * normalised. -ENOENT. */
int mc_conflist_from_dir(const char *dir, const char *name, char **ret, KvErr *e) _wur_;
/* Sets the conflist's cniVersion to version when it has none. */
int mc_conflist_default_version(char **conflist, const char *version) _wur_;

/* Namespace isolation: may a pod in pod_ns use a network in net_ns? */
bool mc_namespace_allowed(const char *pod_ns, const char *net_ns, bool isolation, char *const *global_ns,
                          size_t n_global);

/* ---------------------------------------------------------------- the plugin's config */

typedef struct McCap {
        char *key;
        char *value; /* JSON text */
} McCap;

void mc_caps_free(McCap *v, size_t n);

typedef struct McConfig {
        char *cni_version;
        char *name;
        char *kubeconfig;                /* NULL: no API (only the delegates) unless api_socket */
        char *api_socket;                /* apiSocket: netd's socket, whose `kube` verb makes the API requests */
        char *cluster_network;           /* a NAD name, a network name in confDir, or a path */
        char **default_networks;
        size_t n_default_networks;
        char **delegates; /* the thin plugin's inline delegates, each a normalised conflist (compact JSON) */
        size_t n_delegates;
        char *conf_dir;   /* default /etc/cni/multus/net.d */
        char *cni_dir;    /* cache; default /var/lib/cni/multus */
        char *bin_dir;    /* searched before CNI_PATH; default /opt/cni/bin */
        bool namespace_isolation;
        char **global_namespaces; /* default "default" */
        size_t n_global_namespaces;
        char **system_namespaces; /* default "kube-system" */
        size_t n_system_namespaces;
        char *multus_namespace; /* default kube-system */
        char *readiness_indicator_file;
        char *auxiliary_cni_chain_name; /* a chain run after every network (aux.c); checked by mc_aux_chain_name_valid() */
        char *log_file, *log_level;
        bool retry_delete_on_error;
        bool parallel_delegates; /* kvnet's "parallelDelegates": every delegate's ADD at the same time */
        McCap *runtime_config; /* the runtime's capability args for this plugin, passed to the cluster network */
        size_t n_runtime_config;
} McConfig;

int mc_config_parse(const char *text, size_t len, McConfig **ret, KvErr *e) _wur_;
McConfig *mc_config_free(McConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(McConfig *, mc_config_free);

/* ---------------------------------------------------------------- capability args of a secondary network */

/* What Multus puts into runtimeConfig for a requested network: ips, mac, portMappings, bandwidth,
 * infinibandGUID, deviceID (only those the selection gives). node/ passes each only to plugins that
 * declare the capability. */
int mc_selection_caps(const McSelection *s, McCap **ret, size_t *ret_n) _wur_;

/* ---------------------------------------------------------------- IPAMClaims (ipamclaim.c) */

#define MC_IPAMCLAIM_API "k8s.cni.cncf.io/v1alpha1"
#define MC_IPAMCLAIM_RESOURCE "ipamclaims"
#define MC_IPAMCLAIM_IPS_MAX 2 /* the CRD's limit of status.ips */

/* A k8s.cni.cncf.io/v1alpha1 IPAMClaim, what kvnet-multus uses of it. */
typedef struct McIpamClaim {
        char *namespace_, *name;
        char *network;   /* spec.network: the CNI network name (the delegate config's "name") */
        char *interface; /* spec.interface, NULL when absent */
        char **ips;      /* status.ips: "address/prefix", at most two; none yet: 0 */
        size_t n_ips;
        char *owner_pod; /* status.ownerPod, NULL when absent */
} McIpamClaim;

int mc_ipamclaim_parse(const char *text, size_t len, McIpamClaim **ret, KvErr *e) _wur_;
McIpamClaim *mc_ipamclaim_free(McIpamClaim *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(McIpamClaim *, mc_ipamclaim_free);
/* May selection s (whose delegate's config is named network; NULL: not checked) use claim c? Its network
 * must be the claim's, and its own 'ips', when it gives any and the claim has addresses, the claim's. */
int mc_ipamclaim_check(const McIpamClaim *c, const McSelection *s, const char *network, KvErr *e) _wur_;
/* The addresses ("address/prefix") a CNI result gives the pod interface ifname: those on it, else those on the
 * result's other sandbox interfaces (a chained binding such as kvnet's tap-<ifname> carries them) or on no
 * interface; never a host-side interface's. Each once. */
int mc_result_iface_ips(const char *result, size_t len, const char *ifname, char ***ret, size_t *ret_n,
                        KvErr *e) _wur_;
/* The merge patch of the claim's status subresource: {"status":{"ips":[...],"ownerPod":...}}. */
int mc_ipamclaim_status_format(char *const *ips, size_t n, const char *owner_pod, char **ret) _wur_;

/* ---------------------------------------------------------------- network-status */

typedef struct McStatus {
        char *name;
        char *interface; /* NULL when the result has no sandbox interface */
        char **ips;      /* without prefix length */
        size_t n_ips;
        char *mac;
        long long mtu; /* 0: absent */
        bool default_;
        char **dns_nameservers;
        size_t n_dns_nameservers;
        char *dns_domain;
        char **dns_search;
        size_t n_dns_search;
        char **dns_options;
        size_t n_dns_options;
        char **gateways; /* gateways of the result's default routes */
        size_t n_gateways;
        char *pci_address; /* device-info (type pci) when known */
} McStatus;

/* One or more entries from a delegate's CNI result (any version; JSON text), as Multus makes them: one per
 * sandbox interface, the IPs mapped by their interface index. name: "namespace/name", or the cluster
 * network's config name. device-info: pci_address (a requested deviceID that is a PCI address), else the
 * interface's CNI 1.1 pciID. */
int mc_status_from_result(const char *result, size_t len, const char *name, bool is_default,
                          const char *pci_address, McStatus **ret, size_t *ret_n, KvErr *e) _wur_;
void mc_statuses_free(McStatus *v, size_t n);
/* "0000:03:00.1": a PCI address (what device-info's pci-address holds). */
bool mc_pci_address_valid(const char *s);
/* The annotation's value: a JSON list of the entries, indented as Multus writes it. */
int mc_status_format(const McStatus *v, size_t n, char **ret) _wur_;
/* The annotation current (NULL or "": none) with v's entries after its own, which are kept as they are.
 * KV_ERR_DECODE when current is not a list of objects. */
int mc_status_append(const char *current, const McStatus *v, size_t n, char **ret, KvErr *e) _wur_;
/* The annotation current without the entries of network name on interface ifname (every_of_name: every entry
 * of that name, whatever its interface: the network is attached once and its result may have named several
 * interfaces); the others kept as they are. *ret_removed (may be NULL): how many went. */
int mc_status_remove(const char *current, const char *name, const char *ifname, bool every_of_name, char **ret,
                     size_t *ret_removed, KvErr *e) _wur_;

/* ---------------------------------------------------------------- the per-container cache */

typedef struct McCachedDelegate {
        char *name;     /* "namespace/name", or the config name */
        char *ifname;
        char *conflist; /* what ran, compact JSON */
        McCap *caps;
        size_t n_caps;
        bool master;
        bool aux; /* the auxiliaryCNIChainName chain (aux.c): no interface of its own, not CHECKed */
        /* ADD only (not cached): the selection's default-route */
        bool has_default_route;
        char **gateways;
        size_t n_gateways;
} McCachedDelegate;

typedef struct McCache {
        char *container_id;
        char *netns;
        char *pod_namespace, *pod_name, *pod_uid; /* NULL when not a pod */
        McCachedDelegate *delegates;
        size_t n_delegates;
} McCache;

/* <dir>/kvnet-multus/<container id>. */
int mc_cache_path(const char *dir, const char *container_id, char **ret) _wur_;
int mc_cache_parse(const char *text, size_t len, McCache **ret, KvErr *e) _wur_;
int mc_cache_format(const McCache *c, char **ret) _wur_;
/* Loads the cache of a container: -ENOENT when there is none. */
int mc_cache_load(const char *dir, const char *container_id, McCache **ret, KvErr *e) _wur_;
/* Atomic write (temp file, fsync, rename, fsync of the directory). */
int mc_cache_save(const char *dir, const McCache *c, KvErr *e) _wur_;
/* Removes it; gone already: 0. */
int mc_cache_remove(const char *dir, const char *container_id) _wur_;
McCache *mc_cache_free(McCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(McCache *, mc_cache_free);
void mc_cached_delegate_done(McCachedDelegate *d);
/* The index of the delegate whose interface is ifname, -ENOENT. The auxiliary chain is not one: its net<N> is a
 * name Multus gives it, which a network hot-plugged later may take. */
int mc_cache_find(const McCache *c, const char *ifname) _wur_;
/* Moves *d to the end of c's delegates (*d zeroed); -ENOMEM leaves both as they were. */
int mc_cache_append(McCache *c, McCachedDelegate *d) _wur_;
/* Frees delegate i and closes the gap (the order of the others kept). */
void mc_cache_drop(McCache *c, size_t i);
/* An exclusive flock on <dir>/kvnet-multus (created), held until *ret_fd is closed: a hot-plug's
 * read-modify-write of a cache against another's. */
int mc_cache_lock(const char *dir, int *ret_fd, KvErr *e) _wur_;

/* ---------------------------------------------------------------- Kubernetes events */

#define MC_EVENT_COMPONENT "multus" /* source.component and reportingComponent, as Multus's recorder sets them */

/* One core v1 Event about a pod. Borrowed strings. */
typedef struct McEvent {
        const char *namespace_, *pod_name;
        const char *pod_uid; /* NULL or "": involvedObject has no uid */
        const char *type;    /* "Normal" or "Warning" */
        const char *reason;  /* "AddedInterface", "NoNetworkFound" */
        const char *message;
        const char *component;
        uint64_t time_ns; /* CLOCK_REALTIME; also names the event: "<pod>.<hex time_ns>", as client-go does */
} McEvent;

/* Multus's AddedInterface message: "Add <ifname> [<ip/len> ...] from <network>" (no " from" part when network is
 * NULL or empty). */
int mc_event_added_message(const char *ifname, char *const *ips, size_t n_ips, const char *network, char **ret) _wur_;
/* The Event object as compact JSON text (what POST /api/v1/namespaces/NS/events takes). -EINVAL: a field missing. */
int mc_event_format(const McEvent *ev, char **ret) _wur_;

/* ---------------------------------------------------------------- auxiliaryCNIChainName */

/* libcni's rule for a network name that names a directory: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
bool mc_aux_chain_name_valid(const char *s);
/* The auxiliary chain's conflist, compact JSON: cniVersion version, name name, the plugins of the files
 * <directory of cluster_network>/<name>/ *.conf in lexical order. 0 and *ret NULL when the directory is missing or
 * holds no .conf file (no chain, as in Multus), 1 with the conflist. cluster_network must be a path (Multus's
 * rule); a file that is not a JSON object with a "type": KV_ERR_INVALID_CONFIG naming it. */
int mc_aux_conflist(const char *cluster_network, const char *name, const char *version, char **ret, KvErr *e) _wur_;
/* The prevResult the chain's first plugin gets: the empty result Multus's passthru plugin (its chain's first)
 * returns. */
int mc_aux_seed_result(const char *version, char **ret) _wur_;
