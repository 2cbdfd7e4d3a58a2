/* SPDX-License-Identifier: Apache-2.0 */
/* kvnetctl: kvnet's node debug CLI. Talks to kvnet-netd over its socket. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/json-util.h"
#include "common/proto.h"

static void help(void) {
        printf("Usage: kvnetctl [--socket PATH] [-o table|json] VERB [ARGS]\n"
               "\n"
               "Verbs:\n"
               "  status                     daemon state and counters\n"
               "  endpoints                  attachments on this node\n"
               "  ipam                       pools and IP claims\n"
               "  nat                        NAT backend state (masquerade, port forwards)\n"
               "  sriov                      SR-IOV pools and their VFs (PCI address, owner)\n"
               "  migrations                 VM migrations in progress and the recent ones (both roles)\n"
               "  cluster-claims             the cluster-wide claim store as this node sees it\n"
               "  ipam-release NETWORK KEY   free an idle claim (e.g. vm/default/vm1/default)\n"
               "  vm-release NAMESPACE NAME  free every idle claim of a VM, in every network\n"
               "  trace FROM TO [PROTO[/PORT]] [--src ADDR]\n"
               "                             what this node does with such a packet, hop by hop, and what decided\n"
               "                             each hop. FROM, TO: NAMESPACE/NAME[:INTERFACE] of a VM, a container\n"
               "                             ID, or an address; PROTO: icmp (default), tcp, udp; --src: the source\n"
               "                             address FROM's packet carries (to see what anti-spoofing does with it)\n"
               "\n"
               "-o json prints machine-readable output (may stand before or after the verb).\n"
               "Socket default: %s\n",
               KV_DEFAULT_SOCKET);
}

static const char *str(json_t *o, const char *k) {
        const char *s = json_string_value(json_object_get(o, k));
        return s && *s ? s : "-";
}

static void join_array(json_t *arr, char *buf, size_t n) {
        size_t i;
        json_t *v;
        buf[0] = '\0';
        json_array_foreach(arr, i, v) {
                size_t l = strlen(buf);
                snprintf(buf + l, n - l, "%s%s", i ? "," : "", json_is_string(v) ? json_string_value(v) : "?");
        }
        if (!buf[0])
                snprintf(buf, n, "-");
}

static void print_status(json_t *r) {
        printf("version:      %s\n", str(r, "version"));
        printf("socket:       %s\n", str(r, "socket"));
        printf("state dir:    %s\n", str(r, "stateDir"));
        printf("uptime:       %llds\n", (long long) json_integer_value(json_object_get(r, "uptime")));
        printf("endpoints:    %lld\n", (long long) json_integer_value(json_object_get(r, "endpoints")));
        printf("claims:       %lld\n", (long long) json_integer_value(json_object_get(r, "claims")));
        printf("requests:     %lld (add %lld, del %lld, errors %lld)\n",
               (long long) json_integer_value(json_object_get(r, "requests")),
               (long long) json_integer_value(json_object_get(r, "adds")),
               (long long) json_integer_value(json_object_get(r, "dels")),
               (long long) json_integer_value(json_object_get(r, "errors")));
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(r, "networks"), i, n) printf("network:      %s on bridge %s\n",
                                                                          str(n, "name"), str(n, "bridge"));
        json_t *jn;
        json_array_foreach(json_object_get(r, "journals"), i, jn) printf(
                "journal:      %s: %lld records, %lld of %lld KiB used%s\n", str(jn, "path"),
                (long long) json_integer_value(json_object_get(jn, "records")),
                (long long) json_integer_value(json_object_get(jn, "usedBytes")) / 1024,
                (long long) json_integer_value(json_object_get(jn, "capacityBytes")) / 1024,
                json_integer_value(json_object_get(jn, "damagedAtStart")) ? " (damaged lines at start, see *.corrupt)"
                                                                         : "");
        json_array_foreach(json_object_get(r, "vlanTrunks"), i, jn) printf("vlan trunk:   %s\n",
                                                                           json_string_value(jn));
        json_t *sriov = json_object_get(r, "sriov");
        if (json_is_object(sriov)) {
                if (json_is_true(json_object_get(sriov, "simulated")))
                        printf("sr-iov:       SIMULATED (sysfs %s, VF settings not sent to the kernel)\n",
                               str(sriov, "sysfsRoot"));
                json_array_foreach(json_object_get(sriov, "pools"), i, n) printf(
                        "sr-iov pool:  %s: %lld VFs, %lld free, %lld allocated, %lld unusable\n", str(n, "resource"),
                        (long long) json_integer_value(json_object_get(n, "total")),
                        (long long) json_integer_value(json_object_get(n, "free")),
                        (long long) json_integer_value(json_object_get(n, "allocated")),
                        (long long) json_integer_value(json_object_get(n, "unusable")));
        } else
                printf("sr-iov:       no pools configured\n");
}

static void print_endpoints(json_t *r) {
        printf("%-12s %-10s %-24s %-8s %-12s %-20s %-18s %s\n", "NETWORK", "KIND", "CONTAINER", "IFNAME",
               "HOST-IF/PCI", "IPS", "MAC", "KEY");
        size_t i;
        json_t *ep;
        json_array_foreach(json_object_get(r, "endpoints"), i, ep) {
                char ips[256];
                join_array(json_object_get(ep, "ips"), ips, sizeof ips);
                char cid[25];
                snprintf(cid, sizeof cid, "%s", str(ep, "containerID"));
                /* A VF attachment has no host link: its PCI address stands in that column. */
                const char *host = json_object_get(ep, "pciAddress") ? str(ep, "pciAddress") : str(ep, "hostIfname");
                printf("%-12s %-10s %-24s %-8s %-12s %-20s %-18s %s\n", str(ep, "network"), str(ep, "kind"), cid,
                       str(ep, "ifname"), host, ips, str(ep, "mac"), str(ep, "key"));
        }
}

static void print_ipam(json_t *r) {
        size_t i, k;
        json_t *p, *s;
        printf("%-12s %-24s %8s %8s %8s\n", "NETWORK", "SUBNET", "SIZE", "USED", "FREE");
        json_array_foreach(json_object_get(r, "pools"), i, p) {
                json_array_foreach(json_object_get(p, "sets"), k, s) {
                        printf("%-12s %-24s %8lld %8lld %8lld\n", str(p, "network"), str(s, "subnet"),
                               (long long) json_integer_value(json_object_get(s, "size")),
                               (long long) json_integer_value(json_object_get(s, "used")),
                               (long long) json_integer_value(json_object_get(s, "free")));
                }
        }
        printf("\n%-12s %-40s %-28s %-18s %-9s %s\n", "NETWORK", "KEY", "IPS", "MAC", "STATE", "OWNER");
        json_array_foreach(json_object_get(r, "claims"), i, p) {
                char ips[256];
                join_array(json_object_get(p, "ips"), ips, sizeof ips);
                printf("%-12s %-40s %-28s %-18s %-9s %s\n", str(p, "network"), str(p, "key"), ips, str(p, "mac"),
                       str(p, "state"), str(p, "owner"));
        }
}

static void print_nat(json_t *r) {
        printf("backend: %s  table: %s\n", str(r, "backend"), str(r, "table"));
        char buf[4096];
        join_array(json_object_get(r, "masquerade"), buf, sizeof buf);
        printf("masquerade: %s\n", buf);
        printf("\n%-16s %-9s %-9s %-40s %s\n", "HOST-IP", "PROTO", "HOST-PORT", "TO", "PORT");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(r, "portMappings"), i, p) {
                printf("%-16s %-9s %-9lld %-40s %lld\n", str(p, "hostIP"), str(p, "protocol"),
                       (long long) json_integer_value(json_object_get(p, "hostPort")), str(p, "address"),
                       (long long) json_integer_value(json_object_get(p, "port")));
        }
}

static void print_sriov(json_t *r) {
        size_t i;
        json_t *p;
        if (json_is_true(json_object_get(r, "simulated")))
                printf("SIMULATED node: VF settings are recorded, not sent to the kernel\n\n");
        printf("%-32s %-8s %6s %6s %9s %8s %s\n", "RESOURCE", "VFIO", "TOTAL", "FREE", "ALLOCATED", "UNUSABLE", "PFS");
        json_array_foreach(json_object_get(r, "pools"), i, p) {
                char pfs[256] = "";
                size_t k;
                json_t *pf;
                json_array_foreach(json_object_get(p, "pfs"), k, pf) {
                        size_t l = strlen(pfs);
                        snprintf(pfs + l, sizeof pfs - l, "%s%s%s%s", k ? "," : "", str(pf, "name"),
                                 json_object_get(pf, "error") ? "(error: " : "",
                                 json_object_get(pf, "error") ? "see -o json)" : "");
                }
                printf("%-32s %-8s %6lld %6lld %9lld %8lld %s\n", str(p, "resource"),
                       json_is_true(json_object_get(p, "bindVfio")) ? "yes" : "no",
                       (long long) json_integer_value(json_object_get(p, "total")),
                       (long long) json_integer_value(json_object_get(p, "free")),
                       (long long) json_integer_value(json_object_get(p, "allocated")),
                       (long long) json_integer_value(json_object_get(p, "unusable")), pfs[0] ? pfs : "-");
        }
        printf("\n%-14s %-10s %4s %-10s %-10s %-18s %5s %s\n", "PCI", "PF", "VF", "DRIVER", "NETDEV", "MAC", "VLAN",
               "OWNER");
        json_array_foreach(json_object_get(r, "vfs"), i, p) {
                char vlan[16] = "-";
                if (json_object_get(p, "vlan"))
                        snprintf(vlan, sizeof vlan, "%lld", (long long) json_integer_value(json_object_get(p, "vlan")));
                printf("%-14s %-10s %4lld %-10s %-10s %-18s %5s %s%s\n", str(p, "pci"), str(p, "pf"),
                       (long long) json_integer_value(json_object_get(p, "index")), str(p, "driver"),
                       str(p, "netdev"), str(p, "mac"), vlan, str(p, "owner"),
                       json_is_true(json_object_get(p, "vanished")) ? " (VANISHED)" : "");
        }
}

static void fmt_time(json_t *o, const char *key, char *buf, size_t n) {
        json_t *v = json_object_get(o, key);
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                snprintf(buf, n, "-");
                return;
        }
        time_t t = (time_t) (json_integer_value(v) / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, n, "%H:%M:%S", &tm);
}

static void fmt_ms(json_t *o, const char *key, char *buf, size_t n) {
        json_t *v = json_object_get(o, key);
        if (json_is_integer(v))
                snprintf(buf, n, "%lld", (long long) json_integer_value(v));
        else
                snprintf(buf, n, "-");
}

static void print_migrations(json_t *r) {
        size_t i;
        json_t *p;
        printf("node %s\n\nIN PROGRESS / ATTACHMENTS\n", str(r, "node"));
        printf("%-28s %-10s %-7s %-10s %-18s %-19s %s\n", "VM", "BINDING", "ROLE", "STATE", "IP", "MAC", "PEER");
        json_array_foreach(json_object_get(r, "endpoints"), i, p) {
                char ips[128];
                join_array(json_object_get(p, "ips"), ips, sizeof ips);
                printf("%-28s %-10s %-7s %-10s %-18s %-19s %s\n", str(p, "vm"), str(p, "binding"), str(p, "role"),
                       str(p, "state"), ips, str(p, "mac"), str(p, "peer"));
        }
        printf("\nHISTORY (newest first)\n%-28s %-7s %-10s %-8s %-8s %9s %8s %9s %5s  %s\n", "VM", "ROLE", "STATE",
               "STARTED", "SWITCHED", "DOWNTIME", "TOTAL", "SWITCH", "EARLY", "PEER / REASON");
        json_array_foreach(json_object_get(r, "history"), i, p) {
                char st[16], sw[16], dt[24], tt[24], act[24], early[24];
                fmt_time(p, "started", st, sizeof st);
                fmt_time(p, "switched", sw, sizeof sw);
                fmt_ms(p, "downtimeMs", dt, sizeof dt);
                fmt_ms(p, "totalMs", tt, sizeof tt);
                fmt_ms(p, "switchMicros", act, sizeof act);
                fmt_ms(p, "earlyPackets", early, sizeof early);
                printf("%-28s %-7s %-10s %-8s %-8s %7sms %6sms %7sus %5s  %s%s%s\n", str(p, "vm"), str(p, "role"),
                       str(p, "state"), st, sw, dt, tt, act, early, str(p, "peer"),
                       json_string_length(json_object_get(p, "reason")) ? " / " : "",
                       json_string_length(json_object_get(p, "reason")) ? str(p, "reason") : "");
        }
}

static void print_cluster_claims(json_t *r) {
        size_t i;
        json_t *p;
        if (json_is_null(json_object_get(r, "node"))) {
                printf("stand-alone node (no 'clusterClaims' in the netd config)\n");
                return;
        }
        char store[512];
        if (json_object_get(r, "server"))
                snprintf(store, sizeof store, "kube %s (%s)", str(r, "server"), str(r, "kubeconfig"));
        else
                snprintf(store, sizeof store, "%s", str(r, "dir"));
        printf("node %s, store %s\n\n%-16s %-36s %-28s %-19s %-10s %-8s %s\n", str(r, "node"), store,
               "NETWORK", "KEY", "IPS", "MAC", "HOLDER", "ATTACHED", "MIGRATING TO");
        json_array_foreach(json_object_get(r, "claims"), i, p) {
                char ips[128];
                join_array(json_object_get(p, "ips"), ips, sizeof ips);
                printf("%-16s %-36s %-28s %-19s %-10s %-8s %s%s\n", str(p, "network"), str(p, "key"), ips, str(p, "mac"),
                       str(p, "holder"), json_is_true(json_object_get(p, "attached")) ? "yes" : "no", str(p, "target"),
                       json_is_true(json_object_get(p, "targetReady")) ? " (ready)" : "");
        }
}

static void print_vm_release(json_t *r) {
        static const char *const kinds[] = { "released", "attached" };
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                size_t i;
                json_t *c;
                json_array_foreach(json_object_get(r, kinds[k]), i, c)
                        printf("%-9s %-20s %s\n", kinds[k], str(c, "network"), str(c, "key"));
        }
        if (!json_array_size(json_object_get(r, "released")) && !json_array_size(json_object_get(r, "attached")))
                printf("no claims\n");
}

static void print_trace(json_t *r) {
        json_t *p = json_object_get(r, "packet");
        char port[16] = "";
        if (json_object_get(p, "port"))
                snprintf(port, sizeof port, ":%lld", (long long) json_integer_value(json_object_get(p, "port")));
        printf("packet: %s %s -> %s%s\nfrom:   %s\nto:     %s\n\n", str(p, "protocol"), str(p, "src"), str(p, "dst"),
               port, str(r, "from"), str(r, "to"));
        printf("%-4s %-18s %-12s %s\n", "STEP", "HOP", "VERDICT", "WHERE");
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(r, "hops"), i, h) {
                printf("%-4lld %-18s %-12s %s\n", (long long) json_integer_value(json_object_get(h, "step")),
                       str(h, "hop"), str(h, "verdict"), str(h, "where"));
                if (json_string_length(json_object_get(h, "by")))
                        printf("%36s by: %s\n", "", str(h, "by"));
                if (json_string_length(json_object_get(h, "detail")))
                        printf("%36s %s\n", "", str(h, "detail"));
        }
        printf("\nverdict: %s\n", str(r, "verdict"));
}

/* trace FROM TO [PROTO[/PORT]]: the request's args; NULL (after a message) when they are wrong. */
static json_t *trace_args(const char *const *pos, int n_pos, const char *src) {
        if (n_pos < 3) {
                fprintf(stderr, "kvnetctl: usage: trace FROM TO [PROTO[/PORT]] [--src ADDR]\n");
                return NULL;
        }
        json_t *args = json_pack("{s:s,s:s}", "from", pos[1], "to", pos[2]);
        if (n_pos > 3) {
                char proto[16];
                const char *slash = strchr(pos[3], '/');
                size_t n = slash ? (size_t) (slash - pos[3]) : strlen(pos[3]);
                if (n >= sizeof proto) {
                        fprintf(stderr, "kvnetctl: trace: protocol '%s' must be icmp, tcp or udp\n", pos[3]);
                        json_decref(args);
                        return NULL;
                }
                snprintf(proto, sizeof proto, "%.*s", (int) n, pos[3]);
                json_object_set_new(args, "protocol", json_string(proto));
                if (slash) {
                        char *end = NULL;
                        errno = 0;
                        long port = strtol(slash + 1, &end, 10);
                        if (!slash[1] || *end || errno || port < 1 || port > 65535) {
                                fprintf(stderr, "kvnetctl: trace: port '%s' must be 1..65535\n", slash + 1);
                                json_decref(args);
                                return NULL;
                        }
                        json_object_set_new(args, "port", json_integer(port));
                }
        }
        if (src)
                json_object_set_new(args, "src", json_string(src));
        return args;
}

/* A kvnetctl verb: the socket verb it sends and how its result is shown. */
typedef struct Command {
        const char *verb;
        const char *op;
        void (*print)(json_t *r);  /* -o table; NULL: "ok" */
        const char *json_member;   /* -o json shows this member of the result; NULL: all of it */
        const char *arg_names[2];  /* the verb's two positional arguments, sent as args; NULL: none */
        const char *usage;         /* of those arguments */
        const char *arg_object;    /* NULL, or the args member that holds them ({"vm": {...}}) */
} Command;

/* Sorted by verb (strcmp order): command_find() bisects it. */
static const Command commands[] = {
        { "cluster-claims", "cluster-claims", print_cluster_claims, NULL, {}, NULL },
        { "endpoints", "endpoints", print_endpoints, "endpoints", {}, NULL },
        { "ipam", "ipam", print_ipam, NULL, {}, NULL },
        { "ipam-release", "ipam-release", NULL, NULL, { "network", "key" }, "NETWORK KEY" },
        { "migrations", "migrations", print_migrations, NULL, {}, NULL },
        { "nat", "nat", print_nat, NULL, {}, NULL },
        { "sriov", "sriov", print_sriov, NULL, {}, NULL },
        { "status", "status-daemon", print_status, NULL, {}, NULL },
        { "trace", "trace", print_trace, NULL, {}, NULL },
        { "vm-release", "ipam-release", print_vm_release, NULL, { "namespace", "name" }, "NAMESPACE NAME", "vm" },
};

static int command_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const Command *) elem)->verb);
}

static const Command *command_find(const char *verb) {
        return bsearch(verb, commands, ELEMENTSOF(commands), sizeof commands[0], command_cmp);
}

int main(int argc, char **argv) {
        const char *socket_path = KV_DEFAULT_SOCKET, *output = "table", *src = NULL;
        const char *pos[4] = {};
        int n_pos = 0;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "-h") || streq(a, "--help")) {
                        help();
                        return 0;
                } else if ((streq(a, "--socket") || streq(a, "-s")) && i + 1 < argc)
                        socket_path = argv[++i];
                else if (strncmp(a, "--socket=", 9) == 0)
                        socket_path = a + 9;
                else if ((streq(a, "-o") || streq(a, "--output")) && i + 1 < argc)
                        output = argv[++i];
                else if (strncmp(a, "-o", 2) == 0 && a[2])
                        output = a + 2;
                else if (strncmp(a, "--output=", 9) == 0)
                        output = a + 9;
                else if (streq(a, "--src") && i + 1 < argc)
                        src = argv[++i];
                else if (strncmp(a, "--src=", 6) == 0)
                        src = a + 6;
                else if (a[0] == '-') {
                        fprintf(stderr, "kvnetctl: unknown option '%s' (see --help)\n", a);
                        return 2;
                } else if (n_pos < 4)
                        pos[n_pos++] = a;
                else {
                        fprintf(stderr, "kvnetctl: too many arguments\n");
                        return 2;
                }
        }
        if (!streq(output, "json") && !streq(output, "table")) {
                fprintf(stderr, "kvnetctl: -o must be table or json, got '%s'\n", output);
                return 2;
        }
        if (n_pos == 0) {
                help();
                return 2;
        }
        const char *verb = pos[0];
        const Command *cmd = command_find(verb);
        if (!cmd) {
                fprintf(stderr, "kvnetctl: unknown verb '%s' (see --help)\n", verb);
                return 2;
        }
        json_t *args = NULL;
        if (src && !streq(verb, "trace")) {
                fprintf(stderr, "kvnetctl: --src is an option of trace only\n");
                return 2;
        }
        if (streq(verb, "trace")) {
                if (!(args = trace_args(pos, n_pos, src)))
                        return 2;
        } else if (n_pos > 1 && !cmd->arg_names[0]) {
                fprintf(stderr, "kvnetctl: %s takes no arguments\n", verb);
                return 2;
        } else if (cmd->arg_names[0]) {
                if (n_pos != 3) {
                        fprintf(stderr, "kvnetctl: usage: %s %s\n", verb, cmd->usage);
                        return 2;
                }
                args = json_pack("{s:s,s:s}", cmd->arg_names[0], pos[1], cmd->arg_names[1], pos[2]);
                if (args && cmd->arg_object)
                        args = json_pack("{s:o}", cmd->arg_object, args);
        }
        KvErr e = {};
        json_t *res = NULL;
        int r = proto_call_path(socket_path, cmd->op, args, 30000, &res, &e);
        json_decref(args);
        if (r < 0) {
                fprintf(stderr, "kvnetctl: %s%s%s\n", e.msg[0] ? e.msg : strerror(-r), e.details[0] ? ": " : "",
                        e.details);
                return 1;
        }
        if (streq(output, "json")) {
                json_t *out = cmd->json_member ? json_object_get(res, cmd->json_member) : res;
                json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                printf("\n");
        } else if (cmd->print)
                cmd->print(res);
        else
                printf("ok\n");
        json_decref(res);
        return 0;
}
