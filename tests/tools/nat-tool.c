/* SPDX-License-Identifier: Apache-2.0 */
/* nat-tool: drives netd's NAT backend from the command line (integration tests).
 *
 *   nat-tool [-b BACKEND] sync|add|del|check ENDPOINT...
 *   nat-tool [-b BACKEND] dump
 *
 * ENDPOINT: comma-separated key=value, keys repeatable where it makes sense:
 *   id=pod1,addr=10.88.0.2,addr=fd88::2,subnet=10.88.0.0/24,masq=1,pm=tcp/8080/80[/HOSTIP]
 * Exit 0 on success, 1 on failure (message on stderr), 2 on usage errors. */
#include <getopt.h>
#include <netinet/in.h>

#include "common/json-util.h"
#include "netd/nat/nat.h"

#define MAX_EPS 64
#define MAX_PM 16

typedef struct ToolEp {
        NatEndpoint ep;
        NatPortMapping pm[MAX_PM];
        char *id;
} ToolEp;

static int parse_pm(char *v, NatPortMapping *m) {
        char *save = NULL;
        char *proto = strtok_r(v, "/", &save), *hp = strtok_r(NULL, "/", &save), *cp = strtok_r(NULL, "/", &save),
             *hip = strtok_r(NULL, "", &save);
        if (!proto || !hp || !cp)
                return -EINVAL;
        *m = (NatPortMapping){};
        m->proto = streq(proto, "tcp") ? IPPROTO_TCP : streq(proto, "udp") ? IPPROTO_UDP : (uint8_t) atoi(proto);
        m->host_port = (uint16_t) strtoul(hp, NULL, 10);
        m->container_port = (uint16_t) strtoul(cp, NULL, 10);
        if (hip && kv_addr_parse(hip, &m->host_ip) < 0)
                return -EINVAL;
        return 0;
}

static int parse_ep(char *spec, ToolEp *t) {
        char *save = NULL;
        *t = (ToolEp){};
        for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *v = strchr(kv, '=');
                if (!v)
                        return -EINVAL;
                *v++ = '\0';
                if (streq(kv, "id"))
                        t->id = v;
                else if (streq(kv, "addr")) {
                        if (t->ep.n_addrs >= NAT_MAX_ADDRS || kv_addr_parse(v, &t->ep.addrs[t->ep.n_addrs++]) < 0)
                                return -EINVAL;
                } else if (streq(kv, "subnet")) {
                        if (t->ep.n_subnets >= NAT_MAX_SUBNETS ||
                            kv_prefix_parse(v, &t->ep.subnets[t->ep.n_subnets++]) < 0)
                                return -EINVAL;
                } else if (streq(kv, "masq"))
                        t->ep.masq = streq(v, "1") || streq(v, "true");
                else if (streq(kv, "pm")) {
                        if (t->ep.n_pm >= MAX_PM || parse_pm(v, &t->pm[t->ep.n_pm++]) < 0)
                                return -EINVAL;
                } else
                        return -EINVAL;
        }
        t->ep.id = t->id;
        t->ep.pm = t->pm;
        return 0;
}

int main(int argc, char **argv) {
        const char *backend = "nftables";
        int c;
        while ((c = getopt(argc, argv, "+b:h")) >= 0)
                switch (c) {
                case 'b':
                        backend = optarg;
                        break;
                default:
                        fprintf(stderr, "usage: %s [-b BACKEND] sync|add|del|check|dump ENDPOINT...\n", argv[0]);
                        return 2;
                }
        if (optind >= argc) {
                fprintf(stderr, "%s: missing command\n", argv[0]);
                return 2;
        }
        const char *cmd = argv[optind++];
        static ToolEp eps[MAX_EPS];
        static NatEndpoint flat[MAX_EPS];
        size_t n = 0;
        for (; optind < argc; optind++) {
                if (n >= MAX_EPS || parse_ep(argv[optind], &eps[n]) < 0) {
                        fprintf(stderr, "%s: invalid endpoint '%s'\n", argv[0], argv[optind]);
                        return 2;
                }
                flat[n] = eps[n].ep;
                n++;
        }

        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        int r = nat_backend_new(backend, &b);
        if (r < 0) {
                fprintf(stderr, "%s: backend '%s': %s\n", argv[0], backend, strerror(-r));
                return 1;
        }
        KvErr e = {};
        if (streq(cmd, "sync"))
                r = nat_sync(b, flat, n, &e);
        else if (streq(cmd, "add") || streq(cmd, "del") || streq(cmd, "check")) {
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = streq(cmd, "add")   ? nat_add(b, &flat[i], &e)
                            : streq(cmd, "del") ? nat_del(b, &flat[i], &e)
                                                : nat_check(b, &flat[i], &e);
        } else if (streq(cmd, "dump")) {
                _cleanup_json_ json_t *j = NULL;
                r = nat_dump(b, &j);
                if (r >= 0) {
                        _cleanup_free_ char *s = json_dump_compact(j);
                        printf("%s\n", s ? s : "null");
                }
        } else {
                fprintf(stderr, "%s: unknown command '%s'\n", argv[0], cmd);
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "%s: %s: %s%s%s\n", argv[0], cmd, e.msg[0] ? e.msg : strerror(-r),
                        e.details[0] ? ": " : "", e.details);
                return 1;
        }
        return 0;
}
