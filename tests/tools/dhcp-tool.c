/* SPDX-License-Identifier: Apache-2.0 */
/* dhcp-tool: runs one kvnet DHCP responder (netd/dhcp/dhcp.h) from the command line (integration tests).
 *
 *   dhcp-tool --ifname IF --mac MAC [--netns PATH] [--addr4 A/L --gw4 A [--server4 A]]
 *             [--addr6 A/L [--gw6 A]] [--server-mac MAC] [--dns A]... [--domain D] [--hostname H]
 *             [--route DST[,GW]]... [--mtu N] [--lease SECS] [--stats FILE]
 *
 * Prints "READY" once the socket is open; on SIGTERM/SIGINT (and SIGUSR1) writes the stats JSON to
 * --stats FILE (or stdout). Exit 0 on a clean stop, 1 on failure, 2 on usage errors. */
#include <getopt.h>
#include <signal.h>

#include "common/json-util.h"
#include "common/log.h"
#include "common/netns.h"
#include "netd/dhcp/dhcp.h"

typedef struct Tool {
        DhcpServer *srv;
        const char *stats_path;
} Tool;

static void write_stats(Tool *t) {
        json_t *j = dhcp_server_stats(t->srv);
        if (!j)
                return;
        char *s = json_dump_compact(j);
        json_decref(j);
        if (!s)
                return;
        if (t->stats_path) {
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s.tmp", t->stats_path);
                FILE *f = fopen(tmp, "we");
                if (f) {
                        fprintf(f, "%s\n", s);
                        fclose(f);
                        rename(tmp, t->stats_path);
                }
        } else {
                printf("%s\n", s);
                fflush(stdout);
        }
        free(s);
}

static EventLoop *g_loop; /* main.c-like program: the one global */

static int on_stop(EventSource *src, int signo, void *userdata) {
        (void) src;
        (void) signo;
        write_stats(userdata);
        event_loop_exit(g_loop, 0);
        return 0;
}

static int on_usr1(EventSource *src, int signo, void *userdata) {
        (void) src;
        (void) signo;
        write_stats(userdata);
        return 0;
}

static int usage(void) {
        fprintf(stderr, "usage: dhcp-tool --ifname IF --mac MAC [--netns PATH] [--addr4 A/L --gw4 A] [--addr6 A/L]\n"
                        "                 [--server4 A] [--gw6 A] [--server-mac MAC] [--dns A]... [--domain D]\n"
                        "                 [--hostname H] [--route DST[,GW]]... [--mtu N] [--lease SECS] [--stats FILE]\n");
        return 2;
}

static int bad(const char *opt, const char *v) {
        fprintf(stderr, "dhcp-tool: invalid %s '%s'\n", opt, v);
        return 2;
}

int main(int argc, char **argv) {
        enum { O_IF = 256, O_NS, O_MAC, O_A4, O_GW4, O_S4, O_A6, O_GW6, O_SMAC, O_DNS, O_DOM, O_HOST, O_RT, O_MTU,
               O_LEASE, O_STATS };
        static const struct option opts[] = {
                { "ifname", required_argument, NULL, O_IF },     { "netns", required_argument, NULL, O_NS },
                { "mac", required_argument, NULL, O_MAC },       { "addr4", required_argument, NULL, O_A4 },
                { "gw4", required_argument, NULL, O_GW4 },       { "server4", required_argument, NULL, O_S4 },
                { "addr6", required_argument, NULL, O_A6 },      { "gw6", required_argument, NULL, O_GW6 },
                { "server-mac", required_argument, NULL, O_SMAC }, { "dns", required_argument, NULL, O_DNS },
                { "domain", required_argument, NULL, O_DOM },    { "hostname", required_argument, NULL, O_HOST },
                { "route", required_argument, NULL, O_RT },      { "mtu", required_argument, NULL, O_MTU },
                { "lease", required_argument, NULL, O_LEASE },   { "stats", required_argument, NULL, O_STATS },
                {},
        };
        DhcpLease lease = {};
        const char *ifname = NULL, *netns = NULL;
        Tool t = {};
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case O_IF:
                        ifname = optarg;
                        break;
                case O_NS:
                        netns = optarg;
                        break;
                case O_MAC:
                        if (kv_mac_parse(optarg, lease.mac) < 0)
                                return bad("--mac", optarg);
                        break;
                case O_SMAC:
                        if (kv_mac_parse(optarg, lease.server_mac) < 0)
                                return bad("--server-mac", optarg);
                        break;
                case O_A4:
                        if (kv_prefix_parse(optarg, &lease.addr4) < 0 || lease.addr4.addr.family != AF_INET)
                                return bad("--addr4", optarg);
                        lease.has_v4 = true;
                        break;
                case O_GW4:
                        if (kv_addr_parse(optarg, &lease.gw4) < 0)
                                return bad("--gw4", optarg);
                        break;
                case O_S4:
                        if (kv_addr_parse(optarg, &lease.server4) < 0)
                                return bad("--server4", optarg);
                        break;
                case O_A6:
                        if (kv_prefix_parse(optarg, &lease.addr6) < 0 || lease.addr6.addr.family != AF_INET6)
                                return bad("--addr6", optarg);
                        lease.has_v6 = true;
                        break;
                case O_GW6:
                        if (kv_addr_parse(optarg, &lease.gw6) < 0)
                                return bad("--gw6", optarg);
                        break;
                case O_DNS:
                        if (lease.n_dns >= DHCP_MAX_DNS || kv_addr_parse(optarg, &lease.dns[lease.n_dns]) < 0)
                                return bad("--dns", optarg);
                        lease.n_dns++;
                        break;
                case O_DOM:
                        if (strlen(optarg) >= sizeof lease.domain)
                                return bad("--domain", optarg);
                        snprintf(lease.domain, sizeof lease.domain, "%s", optarg);
                        break;
                case O_HOST:
                        if (strlen(optarg) >= sizeof lease.hostname)
                                return bad("--hostname", optarg);
                        snprintf(lease.hostname, sizeof lease.hostname, "%s", optarg);
                        break;
                case O_RT: {
                        if (lease.n_routes >= DHCP_MAX_ROUTES)
                                return bad("--route", optarg);
                        char buf[128];
                        snprintf(buf, sizeof buf, "%s", optarg);
                        char *gw = strchr(buf, ',');
                        if (gw)
                                *gw++ = '\0';
                        if (kv_prefix_parse(buf, &lease.routes[lease.n_routes].dst) < 0 ||
                            (gw && kv_addr_parse(gw, &lease.routes[lease.n_routes].gw) < 0))
                                return bad("--route", optarg);
                        lease.n_routes++;
                        break;
                }
                case O_MTU:
                        lease.mtu = (uint32_t) strtoul(optarg, NULL, 10);
                        break;
                case O_LEASE:
                        lease.lease_secs = (uint32_t) strtoul(optarg, NULL, 10);
                        break;
                case O_STATS:
                        t.stats_path = optarg;
                        break;
                default:
                        return usage();
                }
        }
        if (!ifname || optind != argc)
                return usage();
        if (lease.has_v4 && lease.server4.family == 0)
                lease.server4 = lease.gw4;

        _cleanup_close_ int nsfd = -1;
        if (netns) {
                int r = netns_open(netns, &nsfd);
                if (r < 0) {
                        log_error_errno(r, "open netns '%s': %m", netns);
                        return 1;
                }
        }
        _cleanup_(event_loop_freep) EventLoop *loop = NULL;
        if (event_loop_new(&loop) < 0)
                return 1;
        g_loop = loop;
        KvErr e = {};
        int r = dhcp_server_new(loop, nsfd, ifname, &lease, &t.srv, &e);
        if (r < 0) {
                fprintf(stderr, "dhcp-tool: %s%s%s\n", e.msg, e.details[0] ? ": " : "", e.details);
                return 1;
        }
        if (event_add_signal(loop, SIGTERM, on_stop, &t, NULL) < 0 ||
            event_add_signal(loop, SIGINT, on_stop, &t, NULL) < 0 ||
            event_add_signal(loop, SIGUSR1, on_usr1, &t, NULL) < 0) {
                dhcp_server_free(t.srv);
                return 1;
        }
        printf("READY\n");
        fflush(stdout);
        r = event_loop_run(loop);
        dhcp_server_free(t.srv);
        return r < 0 ? 1 : 0;
}
