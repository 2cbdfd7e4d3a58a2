/* SPDX-License-Identifier: Apache-2.0 */
/* masq-tool: drives netd's masquerade binding (netd/binding/masquerade.h) from the command line.
 *
 *   masq-tool attach|check|detach|nat|render --netns PATH --tap TAP --sbx IF --host IF --bridge BR
 *             --addr A/L[,GW]... [--mtu N] [--port tcp/80]... [--guest-mac MAC]
 *             [--guest4 A/L --guest-gw4 A] [--guest6 A/L --guest-gw6 A]
 *
 * Run it in the node netns (the bridge's). "render" prints the nft batch and needs no --netns; "nat"
 * only replaces the sandbox's nft table (e.g. another --port list) and leaves the links alone.
 * Exit 0 on success, 1 on failure (message on stderr), 2 on usage errors. */
#include <getopt.h>

#include "common/netns.h"
#include "netd/binding/masquerade.h"

static int usage(void) {
        fprintf(stderr, "usage: masq-tool attach|check|detach|nat|render --netns PATH --tap TAP --sbx IF --host IF --bridge BR\n"
                        "                 --addr A/L[,GW]... [--mtu N] [--port tcp/80]... [--guest-mac MAC]\n"
                        "                 [--guest4 A/L --guest-gw4 A] [--guest6 A/L --guest-gw6 A]\n");
        return 2;
}

static int bad(const char *opt, const char *v) {
        fprintf(stderr, "masq-tool: invalid %s '%s'\n", opt, v);
        return 2;
}

int main(int argc, char **argv) {
        enum { O_NS = 256, O_TAP, O_SBX, O_HOST, O_BR, O_ADDR, O_MTU, O_PORT, O_MAC, O_G4, O_GW4, O_G6, O_GW6 };
        static const struct option opts[] = {
                { "netns", required_argument, NULL, O_NS },      { "tap", required_argument, NULL, O_TAP },
                { "sbx", required_argument, NULL, O_SBX },       { "host", required_argument, NULL, O_HOST },
                { "bridge", required_argument, NULL, O_BR },     { "addr", required_argument, NULL, O_ADDR },
                { "mtu", required_argument, NULL, O_MTU },       { "port", required_argument, NULL, O_PORT },
                { "guest-mac", required_argument, NULL, O_MAC }, { "guest4", required_argument, NULL, O_G4 },
                { "guest-gw4", required_argument, NULL, O_GW4 }, { "guest6", required_argument, NULL, O_G6 },
                { "guest-gw6", required_argument, NULL, O_GW6 }, { "help", no_argument, NULL, 'h' },
                {},
        };
        MasqConfig c;
        masq_config_defaults(&c);
        MasqPort ports[MASQ_MAX_PORTS + 1];
        uint8_t mac[6];
        const char *netns = NULL;
        int o;
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (o) {
                case O_NS:
                        netns = optarg;
                        break;
                case O_TAP:
                        c.tap = optarg;
                        break;
                case O_SBX:
                        c.sbx_ifname = optarg;
                        break;
                case O_HOST:
                        c.host_ifname = optarg;
                        break;
                case O_BR:
                        c.bridge = optarg;
                        break;
                case O_ADDR: {
                        if (c.n_addrs >= ELEMENTSOF(c.vm_addrs))
                                return bad("--addr (too many)", optarg);
                        char *gw = strchr(optarg, ',');
                        if (gw)
                                *gw++ = '\0';
                        if (kv_prefix_parse(optarg, &c.vm_addrs[c.n_addrs]) < 0 ||
                            (gw && kv_addr_parse(gw, &c.gateways[c.n_addrs]) < 0))
                                return bad("--addr", optarg);
                        c.n_addrs++;
                        break;
                }
                case O_MTU:
                        c.mtu = (uint32_t) strtoul(optarg, NULL, 10);
                        break;
                case O_PORT: {
                        if (c.n_ports > MASQ_MAX_PORTS)
                                return bad("--port (too many)", optarg);
                        char *slash = strchr(optarg, '/');
                        if (!slash)
                                return bad("--port", optarg);
                        *slash = '\0';
                        MasqPort *p = &ports[c.n_ports++];
                        p->proto = streq(optarg, "tcp") ? IPPROTO_TCP : streq(optarg, "udp") ? IPPROTO_UDP : (uint8_t) atoi(optarg);
                        p->port = (uint16_t) strtoul(slash + 1, NULL, 10);
                        c.ports = ports;
                        break;
                }
                case O_MAC:
                        if (kv_mac_parse(optarg, mac) < 0)
                                return bad("--guest-mac", optarg);
                        c.guest_mac = mac;
                        break;
                case O_G4:
                        if (kv_prefix_parse(optarg, &c.guest4) < 0)
                                return bad("--guest4", optarg);
                        break;
                case O_GW4:
                        if (kv_addr_parse(optarg, &c.guest_gw4) < 0)
                                return bad("--guest-gw4", optarg);
                        break;
                case O_G6:
                        if (kv_prefix_parse(optarg, &c.guest6) < 0)
                                return bad("--guest6", optarg);
                        break;
                case O_GW6:
                        if (kv_addr_parse(optarg, &c.guest_gw6) < 0)
                                return bad("--guest-gw6", optarg);
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        return usage();
                }
        }
        if (optind + 1 != argc)
                return usage();
        const char *verb = argv[optind];
        KvErr e = {};
        int r;

        if (streq(verb, "render")) {
                char *text = NULL;
                r = masq_nat_render(&c, &text, &e);
                if (r >= 0) {
                        fputs(text, stdout);
                        free(text);
                }
        } else {
                if (!netns)
                        return usage();
                _cleanup_close_ int nsfd = -1;
                r = netns_open(netns, &nsfd);
                if (r < 0) {
                        fprintf(stderr, "masq-tool: opening netns '%s': %s\n", netns, strerror(-r));
                        return 1;
                }
                if (streq(verb, "attach")) {
                        LinkInfo li;
                        r = masq_vm_attach(nsfd, &c, &li, &e);
                        if (r >= 0)
                                printf("host_ifindex=%d tap_ifindex=%d\n", li.host_ifindex, li.sandbox_ifindex);
                } else if (streq(verb, "check"))
                        r = masq_vm_check(nsfd, &c, &e);
                else if (streq(verb, "nat"))
                        r = masq_nat_apply(nsfd, &c, &e);
                else if (streq(verb, "detach"))
                        r = masq_vm_detach(nsfd, &c, &e);
                else
                        return usage();
        }
        if (r < 0) {
                fprintf(stderr, "masq-tool: %s: %s%s%s (code %d)\n", verb, e.msg[0] ? e.msg : strerror(-r),
                        e.details[0] ? ": " : "", e.details, e.code);
                return 1;
        }
        return 0;
}
