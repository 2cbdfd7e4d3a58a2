/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet CNI plugin: a thin, stateless client of netd.
 *
 * The plugin parses the CNI environment and the network config from stdin into typed structs
 * (everything is checked here, at the boundary), builds one request per docs/protocol.md,
 * sends it to netd over its socket and prints netd's result converted to the cniVersion the
 * runtime asked for. Nothing but the result or the error object goes to stdout.
 *
 * Every parser fills a KvErr (CNI code + message naming the field and the value) and returns a
 * negative errno on failure. */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "common/addr.h"
#include "common/kverr.h"

#define CNI_MAX_STDIN (1024 * 1024)
#define CNI_IFNAME_MAX 15
#define CNI_DEFAULT_BRIDGE "kvbr0"
#define CNI_LATEST_VERSION "1.1.0"

/* ---- versions ---- */

/* Supported versions, oldest first, NULL-terminated. */
extern const char *const cni_supported_versions[];
/* Index into cni_supported_versions, or -1 when unsupported. */
int cni_version_index(const char *version);
/* Compares two version strings "a.b.c" numerically; unparsable parts compare as 0. */
int cni_version_cmp(const char *a, const char *b);

/* ---- environment ---- */

typedef enum CniCommand {
        CNI_CMD_ADD,
        CNI_CMD_DEL,
        CNI_CMD_CHECK,
        CNI_CMD_STATUS,
        CNI_CMD_GC,
        CNI_CMD_VERSION,
        _CNI_CMD_MAX,
} CniCommand;

const char *cni_command_to_string(CniCommand c);
/* -EINVAL for an unknown name. */
int cni_command_from_string(const char *s, CniCommand *ret) _wur_;

/* Environment lookup over a NULL-terminated "KEY=VALUE" array (like environ). */
const char *cni_getenv(char *const *envp, const char *name);

typedef struct CniEnv {
        CniCommand command;
        /* Borrowed from envp; NULL when absent (or ignored for the command). */
        const char *container_id;
        const char *netns;
        const char *ifname;
        const char *args;
        const char *path;
        bool debug; /* KVNET_DEBUG set */
        const char *netd_socket; /* KVNET_NETD_SOCKET: netd's socket when the config names none (the node's own) */
} CniEnv;

/* Reads and validates CNI_* per command (KV_ERR_INVALID_ENV naming the variable and value). */
int cni_env_parse(char *const *envp, CniEnv *ret, KvErr *e) _wur_;

/* Validators, exposed for tests. */
bool cni_container_id_valid(const char *s);
bool cni_ifname_valid(const char *s);
bool cni_dns_label_valid(const char *s);

/* CNI_ARGS "K=V;K=V". */
typedef struct CniArgs {
        bool ignore_unknown;
        char *k8s_pod_namespace;
        char *k8s_pod_name;
        char *k8s_pod_infra_container_id;
        char *k8s_pod_uid;
        char *vm_name;
        char *vm_namespace;
        char *vm_interface;
        char *vm_binding;
        char *ip;  /* raw, comma-separated list; validated by cni_netconf_parse */
        char *mac; /* raw */
} CniArgs;

/* NULL or "" -> all fields empty. Unknown key -> KV_ERR_INVALID_ENV unless IgnoreUnknown=1|true;
 * a pair without '=' -> KV_ERR_INVALID_ENV. */
int cni_args_parse(const char *s, CniArgs *ret, KvErr *e) _wur_;
void cni_args_done(CniArgs *a);

/* ---- results (typed CNI result, any supported version) ---- */

typedef struct CniResultInterface {
        char *name;
        char *mac;     /* may be NULL */
        char *sandbox; /* may be NULL */
        char *socket_path; /* 1.1 */
        char *pci_id;      /* 1.1 */
        uint32_t mtu;      /* 1.1; 0 = absent */
} CniResultInterface;

typedef struct CniResultIp {
        KvPrefix address;
        KvAddr gateway; /* family 0 = absent */
        int interface;  /* index into interfaces, -1 = absent */
} CniResultIp;

typedef struct CniResultRoute {
        KvPrefix dst;
        KvAddr gw; /* family 0 = absent */
        /* 1.1 extras; has_* says whether present */
        bool has_mtu, has_advmss, has_priority, has_table, has_scope;
        long long mtu, advmss, priority, table, scope;
} CniResultRoute;

typedef struct CniDns {
        char **nameservers;
        size_t n_nameservers;
        char *domain;
        char **search;
        size_t n_search;
        char **options;
        size_t n_options;
} CniDns;

typedef struct CniResult {
        char *cni_version; /* as given */
        CniResultInterface *interfaces;
        size_t n_interfaces;
        CniResultIp *ips;
        size_t n_ips;
        CniResultRoute *routes;
        size_t n_routes;
        CniDns dns;
} CniResult;

/* Parses a result object of any supported version. ctx names it in errors ("prevResult").
 * version: the version to interpret it as (prevResult inherits the config's cniVersion when
 * it has none of its own); errors are KV_ERR_INVALID_CONFIG naming e.g. "prevResult.ips[1].address". */
int cni_result_parse(json_t *obj, const char *ctx, const char *version, CniResult **ret, KvErr *e) _wur_;
CniResult *cni_result_free(CniResult *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(CniResult *, cni_result_free);
/* Emits the result as the given version (0.3.x/0.4.0: ips[].version; 1.1 extras only for 1.1). */
int cni_result_to_json(const CniResult *r, const char *version, json_t **ret) _wur_;

/* ---- network config ---- */

typedef enum CniBinding {
        CNI_BINDING_BRIDGE,
        CNI_BINDING_MASQUERADE,
        CNI_BINDING_SRIOV,
} CniBinding;

typedef enum CniNatBackend {
        CNI_NAT_NFTABLES,
        CNI_NAT_EBPF,
} CniNatBackend;

const char *cni_binding_to_string(CniBinding b);
const char *cni_nat_backend_to_string(CniNatBackend b);

typedef struct CniPortMapping {
        uint16_t host_port;
        uint16_t container_port;
        char protocol[4]; /* "tcp" | "udp" */
        KvAddr host_ip;   /* family 0 = any */
} CniPortMapping;

typedef struct CniIpRequest {
        KvAddr addr;
        int prefixlen; /* -1 = none given */
} CniIpRequest;

typedef struct CniVmPort {
        uint16_t port;
        char protocol[4]; /* "tcp" | "udp" */
} CniVmPort;

#define CNI_MAX_VM_PORTS 64

typedef struct CniVmId {
        char *namespace_;
        char *name;
        char *interface;
        CniVmPort ports[CNI_MAX_VM_PORTS]; /* masquerade: forwarded ports (none = all), KubeVirt's 'ports' */
        size_t n_ports;
} CniVmId;

typedef struct CniAttachment {
        char *container_id;
        char *ifname;
} CniAttachment;

typedef struct CniNetConf {
        const char *cni_version; /* points into cni_supported_versions */
        char *name;
        CniBinding binding;
        char *bridge;
        uint32_t mtu;
        uint16_t vlan;
        bool ip_masq;
        bool is_gateway;
        bool anti_spoofing; /* "antiSpoofing" (default true): what the port may send is filtered (docs/SECURITY.md) */
        CniNatBackend nat_backend;
        char *socket;
        json_t *ipam; /* opaque to the plugin, passed to netd verbatim; NULL when absent */

        /* binding "sriov" (docs/sriov.md): the device-plugin resource the VF comes from, and the VF's
         * spoof check (default on) and trust (default off). */
        char *resource_name; /* NULL when absent */
        bool spoofchk, trust;

        bool chained;
        CniResult *prev_result; /* NULL when absent */

        /* runtimeConfig + CNI_ARGS */
        CniPortMapping *port_mappings;
        size_t n_port_mappings;
        CniIpRequest *ips;
        size_t n_ips, cap_ips;
        bool has_mac;
        uint8_t mac[6];
        bool has_vm;
        CniVmId vm;

        /* GC: cni.dev/valid-attachments */
        CniAttachment *valid_attachments;
        size_t n_valid_attachments;
} CniNetConf;

/* Parses the stdin config for the command in env (args: parsed CNI_ARGS). Errors: 1 for an
 * unsupported/incompatible version, 4 for bad CNI_ARGS values, 6 for malformed JSON/oversized
 * input, 7 for invalid config. */
int cni_netconf_parse(const char *text, size_t len, const CniEnv *env, const CniArgs *args, CniNetConf **ret,
                      KvErr *e) _wur_;
CniNetConf *cni_netconf_free(CniNetConf *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CniNetConf *, cni_netconf_free);

/* ---- netd request ---- */

/* Builds {"op": ..., "args": {...}} pieces for netd: *ret_op is static, *ret_args new. */
int cni_request_build(const CniEnv *env, const CniNetConf *conf, const char **ret_op, json_t **ret_args) _wur_;
/* Timeout for the netd call of a command, in ms. */
int cni_request_timeout_ms(CniCommand c);

/* ---- whole plugin ---- */

/* The error object {"cniVersion","code","msg","details"?}. */
json_t *cni_error_to_json(const KvErr *e, const char *version);

/* Runs the plugin: reads config from in, writes the result or error object to out, diagnostics
 * to err (only when KVNET_DEBUG is set in envp). Returns the process exit status (0 or 1). */
int cni_run(FILE *in, FILE *out, FILE *err, char *const *envp);
