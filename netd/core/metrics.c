/* SPDX-License-Identifier: Apache-2.0 */
/* netd's Prometheus endpoint (metrics.h, docs/metrics.md). */
#include "netd/core/metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/array.h"
#include "common/event.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/metrics-http.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

#define SCRAPE_WAIT_SEC 2

static const double bucket_le[NETD_METRICS_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1,     2.5,  5,    10 };

struct NetdMetrics {
        Manager *m;
        KvMetricsServer *srv;
        int efd;
        EventSource *src;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        uint64_t asked, made; /* scrapes asked for / answered by the loop */
        char *text;           /* the loop's last answer */
};

int netd_metrics_parse_listen(const char *s, KvErr *e) {
        return kv_metrics_parse_listen(s, "config: 'metricsListen'", false, e);
}

/* ---- counting (the loop) */

void netd_metrics_request(Manager *m, int v, unsigned code, uint64_t usec) {
        NetdVerbStats *st = &m->verb_stats[v >= 0 && v < NETD_MAX_VERBS ? v : NETD_MAX_VERBS];
        size_t i;
        for (i = 0; i < st->n_codes && st->codes[i] != code; i++)
                ;
        if (i == st->n_codes && i < ELEMENTSOF(st->codes))
                st->codes[st->n_codes++] = code;
        if (i < st->n_codes)
                st->by_code[i]++;
        else
                st->other++;
        kv_metrics_observe(st->buckets, bucket_le, NETD_METRICS_BUCKETS, &st->count, &st->sum, (double) usec / 1e6);
}

/* ---- the text (the loop) */

#define label kv_metrics_label
#define family kv_metrics_family

typedef struct Group {
        char network[128], binding[16];
        bool vm;
        uint64_t n;
} Group;

static void attachments(Manager *m, FILE *f) {
        family(f, "kvnet_netd_attachments", "gauge", "Attachments on this node by network, binding and kind.");
        Group *g = NULL;
        size_t n = 0, cap = 0;
        EP_FOREACH(m, ep) {
                size_t i;
                for (i = 0; i < n; i++)
                        if (streq(g[i].network, ep->network) && streq(g[i].binding, ep->binding) &&
                            g[i].vm == (ep->kind == EP_KIND_VM))
                                break;
                if (i == n) {
                        if (ARRAY_GROW(g, cap, n + 1) < 0)
                                break;
                        g[n] = (Group){ .vm = ep->kind == EP_KIND_VM };
                        snprintf(g[n].network, sizeof g[n].network, "%s", ep->network);
                        snprintf(g[n].binding, sizeof g[n].binding, "%s", ep->binding);
                        n++;
                }
                g[i].n++;
        }
        for (size_t i = 0; i < n; i++) {
                fputs("kvnet_netd_attachments{network=\"", f);
                label(f, g[i].network);
                fputs("\",binding=\"", f);
                label(f, g[i].binding);
                fprintf(f, "\",kind=\"%s\"} %llu\n", g[i].vm ? "vm" : "container", (unsigned long long) g[i].n);
        }
        free(g);
}

static void requests(Manager *m, FILE *f) {
        family(f, "kvnet_netd_requests_total", "counter",
               "Requests on netd's socket by verb and result code (CNI error codes; 0 = success).");
        for (size_t v = 0; v <= NETD_MAX_VERBS; v++) {
                const NetdVerbStats *st = &m->verb_stats[v];
                const char *name = v < NETD_MAX_VERBS && verb_at(v) ? verb_at(v)->name : "unknown";
                for (size_t i = 0; i < st->n_codes; i++)
                        fprintf(f, "kvnet_netd_requests_total{verb=\"%s\",code=\"%u\"} %llu\n", name, st->codes[i],
                                (unsigned long long) st->by_code[i]);
                if (st->other)
                        fprintf(f, "kvnet_netd_requests_total{verb=\"%s\",code=\"other\"} %llu\n", name,
                                (unsigned long long) st->other);
        }
        family(f, "kvnet_netd_request_duration_seconds", "histogram", "Time netd took to answer a request, by verb.");
        for (size_t v = 0; v <= NETD_MAX_VERBS; v++) {
                const NetdVerbStats *st = &m->verb_stats[v];
                const char *name = v < NETD_MAX_VERBS && verb_at(v) ? verb_at(v)->name : "unknown";
                char labels[64];
                if (!st->count)
                        continue;
                snprintf(labels, sizeof labels, "verb=\"%s\"", name);
                kv_metrics_histogram(f, "kvnet_netd_request_duration_seconds", labels, bucket_le, st->buckets,
                                     NETD_METRICS_BUCKETS, st->count, st->sum);
        }
}

static void ipam_pools(Manager *m, FILE *f) {
        _cleanup_json_ json_t *pools = ipam_dump_pools(m->ipam);
        family(f, "kvnet_netd_ipam_addresses", "gauge",
               "Addresses of each IPAM range set: its size and how many are claimed.");
        size_t i, k;
        json_t *p, *set;
        json_array_foreach(pools, i, p) {
                const char *net = json_string_value(json_object_get(p, "network"));
                json_array_foreach(json_object_get(p, "sets"), k, set) {
                        const char *sub = json_string_value(json_object_get(set, "subnet"));
                        for (int s = 0; s < 2; s++) {
                                fputs("kvnet_netd_ipam_addresses{network=\"", f);
                                label(f, net);
                                fputs("\",subnet=\"", f);
                                label(f, sub);
                                fprintf(f, "\",state=\"%s\"} %lld\n", s ? "used" : "size",
                                        (long long) json_integer_value(json_object_get(set, s ? "used" : "size")));
                        }
                }
        }
}

static void dhcp(Manager *m, FILE *f) {
        static const char *const kinds[] = { "discover", "offer", "request", "ack", "nak", "release", "decline",
                                             "inform", "rs", "ra", "solicit", "reply6", "malformed", "ignored",
                                             "limited" };
        uint64_t sum[ELEMENTSOF(kinds)] = {};
        EP_FOREACH(m, ep) {
                if (!ep->dhcp)
                        continue;
                _cleanup_json_ json_t *st = dhcp_server_stats(ep->dhcp);
                for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                        sum[k] += (uint64_t) json_integer_value(json_object_get(st, kinds[k]));
        }
        family(f, "kvnet_netd_dhcp_frames_total", "counter",
               "DHCP, DHCPv6 and router-discovery frames netd's guest servers saw or sent, by message kind (limited: "
               "dropped by a guest's rate limit); attachments deleted take their counts with them.");
        for (size_t k = 0; k < ELEMENTSOF(kinds); k++)
                fprintf(f, "kvnet_netd_dhcp_frames_total{kind=\"%s\"} %llu\n", kinds[k], (unsigned long long) sum[k]);
}

/* A VM NIC's counters as the guest sees them (KubeVirt's kubevirt_vmi_network_* names and labels): what the guest
 * receives is what its tap transmits, and the other way round. */
typedef struct VmNic {
        const Endpoint *ep;
        struct rtnl_link_stats64 st;
} VmNic;

static void vm_nics(Manager *m, FILE *f) {
        VmNic *v = NULL;
        size_t n = 0, cap = 0;
        EP_FOREACH(m, ep) {
                if (ep->kind != EP_KIND_VM || !ep->tap[0] || !ep->vm_name[0])
                        continue;
                _cleanup_close_ int fd = -1;
                struct rtnl_link_stats64 st;
                /* a sandbox gone or replaced, a tap not there (yet): no sample rather than a wrong one */
                if (endpoint_netns_open(ep, &fd) < 0 || link_get_stats(fd, ep->tap, &st) < 0)
                        continue;
                if (ARRAY_GROW(v, cap, n + 1) < 0)
                        break;
                v[n++] = (VmNic){ .ep = ep, .st = st };
        }
        static const struct {
                const char *name, *help;
                size_t off; /* of the tap's counter in rtnl_link_stats64 */
        } fams[] = {
                { "kubevirt_vmi_network_receive_bytes_total", "Bytes the VM received on the interface.",
                  offsetof(struct rtnl_link_stats64, tx_bytes) },
                { "kubevirt_vmi_network_transmit_bytes_total", "Bytes the VM sent on the interface.",
                  offsetof(struct rtnl_link_stats64, rx_bytes) },
                { "kubevirt_vmi_network_receive_packets_total", "Packets the VM received on the interface.",
                  offsetof(struct rtnl_link_stats64, tx_packets) },
                { "kubevirt_vmi_network_transmit_packets_total", "Packets the VM sent on the interface.",
                  offsetof(struct rtnl_link_stats64, rx_packets) },
                { "kubevirt_vmi_network_receive_errors_total", "Errors receiving on the interface.",
                  offsetof(struct rtnl_link_stats64, tx_errors) },
                { "kubevirt_vmi_network_transmit_errors_total", "Errors sending on the interface.",
                  offsetof(struct rtnl_link_stats64, rx_errors) },
                { "kubevirt_vmi_network_receive_packets_dropped_total",
                  "Packets for the VM dropped on the interface (e.g. the guest not reading).",
                  offsetof(struct rtnl_link_stats64, tx_dropped) },
                { "kubevirt_vmi_network_transmit_packets_dropped_total",
                  "Packets from the VM dropped on the interface.", offsetof(struct rtnl_link_stats64, rx_dropped) },
        };
        for (size_t k = 0; k < ELEMENTSOF(fams); k++) {
                kv_metrics_family(f, fams[k].name, "counter", fams[k].help);
                for (size_t i = 0; i < n; i++) {
                        const Endpoint *ep = v[i].ep;
                        fprintf(f, "%s{name=\"", fams[k].name);
                        label(f, ep->vm_name);
                        fputs("\",namespace=\"", f);
                        label(f, ep->vm_namespace);
                        fputs("\",interface=\"", f);
                        label(f, ep->vm_interface[0] ? ep->vm_interface : ep->ifname);
                        if (m->node_name[0]) {
                                fputs("\",node=\"", f);
                                label(f, m->node_name);
                        }
                        uint64_t val;
                        memcpy(&val, (const char *) &v[i].st + fams[k].off, sizeof val);
                        fprintf(f, "\"} %llu\n", (unsigned long long) val);
                }
        }
        free(v);
}

/* What anti-spoofing dropped, per filtered port (the port's element of @portdrops; 0 for a port that dropped
 * nothing). */
typedef struct PortDrops {
        char ifname[16];
        uint64_t packets, bytes;
} PortDrops;

typedef struct PortDropsList {
        PortDrops *v;
        size_t n, cap;
} PortDropsList;

static int port_drops_cb(const char *ifname, uint64_t packets, uint64_t bytes, void *userdata) {
        PortDropsList *l = userdata;
        if (ARRAY_GROW(l->v, l->cap, l->n + 1) < 0)
                return -ENOMEM;
        PortDrops *d = &l->v[l->n++];
        snprintf(d->ifname, sizeof d->ifname, "%s", ifname);
        d->packets = packets;
        d->bytes = bytes;
        return 0;
}

static int port_drops_cmp(const void *a, const void *b) {
        return strcmp(((const PortDrops *) a)->ifname, ((const PortDrops *) b)->ifname);
}

static void antispoof(Manager *m, FILE *f) {
        PortDropsList l = {};
        if (m->portfilter)
                (void) !portfilter_drops(m->portfilter, port_drops_cb, &l);
        /* sorted by port: each filtered port looks its counter up (a scrape is O(ports log dropping ports)) */
        if (l.n > 1)
                qsort(l.v, l.n, sizeof *l.v, port_drops_cmp);
        static const char *const names[] = { "kvnet_netd_antispoof_dropped_packets_total",
                                             "kvnet_netd_antispoof_dropped_bytes_total" };
        family(f, names[0], "counter",
               "Frames anti-spoofing dropped at an attachment's bridge port (since the port was made or netd "
               "started: the filter is rebuilt at start).");
        family(f, names[1], "counter", "Bytes of those frames.");
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                EP_FOREACH(m, ep) {
                        if (!bridge_port_filtered(ep))
                                continue;
                        PortDrops key = {};
                        snprintf(key.ifname, sizeof key.ifname, "%s", ep->host_ifname);
                        const PortDrops *d = l.n ? bsearch(&key, l.v, l.n, sizeof *l.v, port_drops_cmp) : NULL;
                        uint64_t val = !d ? 0 : k == 0 ? d->packets : d->bytes;
                        fprintf(f, "%s{network=\"", names[k]);
                        label(f, ep->network);
                        fprintf(f, "\",port=\"%s\",kind=\"%s\",", ep->host_ifname,
                                ep->kind == EP_KIND_VM ? "vm" : "container");
                        if (ep->kind == EP_KIND_VM) {
                                fputs("namespace=\"", f);
                                label(f, ep->vm_namespace);
                                fputs("\",name=\"", f);
                                label(f, ep->vm_name);
                                fputs("\",interface=\"", f);
                                label(f, ep->vm_interface);
                        } else {
                                fputs("container=\"", f);
                                label(f, ep->container_id);
                                fputs("\",interface=\"", f);
                                label(f, ep->ifname);
                        }
                        fprintf(f, "\"} %llu\n", (unsigned long long) val);
                }
        free(l.v);
}

/* The node NAT's state as the kernel has it (nat_dump: table inet kvnet): masqueraded addresses, host port forwards. */
static void nat(Manager *m, FILE *f) {
        _cleanup_json_ json_t *d = NULL;
        if (m->nat_nft && nat_dump(m->nat_nft, &d) < 0)
                d = NULL;
        family(f, "kvnet_netd_nat_elements", "gauge",
               "Elements of the node's NAT table (nftables inet kvnet) read from the kernel: masquerade, the "
               "addresses masqueraded; port_forward, the host ports forwarded to attachments.");
        fprintf(f, "kvnet_netd_nat_elements{backend=\"nftables\",kind=\"masquerade\"} %zu\n",
                json_array_size(json_object_get(d, "masquerade")));
        fprintf(f, "kvnet_netd_nat_elements{backend=\"nftables\",kind=\"port_forward\"} %zu\n",
                json_array_size(json_object_get(d, "portMappings")));
}

static void migrations(Manager *m, FILE *f) {
        const HandoffStats *st = m->handoff ? handoff_stats(m->handoff) : NULL;
        static const struct {
                MigRole role;
                MigState state;
        } ends[] = { { MIG_ROLE_SOURCE, MIG_STATE_COMPLETED },
                     { MIG_ROLE_SOURCE, MIG_STATE_ABORTED },
                     { MIG_ROLE_TARGET, MIG_STATE_ACTIVE },
                     { MIG_ROLE_TARGET, MIG_STATE_ABORTED } };
        family(f, "kvnet_netd_migrations_total", "counter",
               "Migrations that ended on this node since netd started, by its role and how they ended (source: "
               "completed or aborted; target: active, the VM runs here, or aborted, rolled back).");
        for (size_t i = 0; i < ELEMENTSOF(ends); i++)
                fprintf(f, "kvnet_netd_migrations_total{role=\"%s\",state=\"%s\"} %llu\n",
                        mig_role_to_string(ends[i].role), mig_state_to_string(ends[i].state),
                        (unsigned long long) (st ? st->ended[ends[i].role][ends[i].state] : 0));
        family(f, "kvnet_netd_migration_switch_seconds", "histogram",
               "Time a target took to switch its datapath to the arrived VM (carrier, routes, announcements).");
        static const uint64_t none[HANDOFF_SWITCH_BUCKETS];
        kv_metrics_histogram(f, "kvnet_netd_migration_switch_seconds", "", handoff_switch_le, st ? st->switch_b : none,
                             HANDOFF_SWITCH_BUCKETS, st ? st->switch_n : 0, st ? st->switch_sum : 0.0);
        family(f, "kvnet_netd_migration_early_packets_total", "counter",
               "Packets the early switchover delivered into paused migration targets on this node.");
        fprintf(f, "kvnet_netd_migration_early_packets_total %llu\n",
                (unsigned long long) (st ? st->early_packets : 0));
}

static void journals(Manager *m, FILE *f) {
        family(f, "kvnet_netd_journal_bytes", "gauge", "Bytes in use in netd's state journals.");
        Journal *js[] = { m->ep_journal, ipam_journal(m->ipam) };
        static const char *const names[] = { "endpoints", "ipam" };
        for (size_t k = 0; k < ELEMENTSOF(js); k++)
                if (js[k])
                        fprintf(f, "kvnet_netd_journal_bytes{journal=\"%s\"} %llu\n", names[k],
                                (unsigned long long) journal_used_bytes(js[k]));
}

char *netd_metrics_render(Manager *m) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        family(f, "kvnet_netd_info", "gauge", "netd's version.");
        fprintf(f, "kvnet_netd_info{version=\"%s\"} 1\n", NETD_VERSION);
        family(f, "kvnet_netd_uptime_seconds", "gauge", "Seconds since netd started.");
        fprintf(f, "kvnet_netd_uptime_seconds %llu\n", (unsigned long long) ((now_usec() - m->started_usec) / 1000000));
        attachments(m, f);
        requests(m, f);
        ipam_pools(m, f);
        dhcp(m, f);
        vm_nics(m, f);
        antispoof(m, f);
        nat(m, f);
        migrations(m, f);
        journals(m, f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* ---- the loop's side of a scrape */

static int on_ask(EventSource *s, int fd, uint32_t revents, void *userdata) {
        (void) s, (void) revents;
        NetdMetrics *mx = userdata;
        uint64_t v;
        if (read(fd, &v, sizeof v) < 0)
                return 0;
        char *text = netd_metrics_render(mx->m);
        pthread_mutex_lock(&mx->mu);
        free(mx->text);
        mx->text = text;
        mx->made = mx->asked;
        pthread_cond_broadcast(&mx->cv);
        pthread_mutex_unlock(&mx->mu);
        return 0;
}

/* ---- the HTTP thread: asks the loop, waits for its answer */

static char *render_on_loop(void *userdata, const char **why) {
        NetdMetrics *mx = userdata;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SCRAPE_WAIT_SEC;
        pthread_mutex_lock(&mx->mu);
        uint64_t mine = ++mx->asked, one = 1;
        if (write(mx->efd, &one, sizeof one) < 0) {
                /* the counter is full (2^64 - 2 asks): the loop's read empties it */
        }
        int r = 0;
        while (mx->made < mine && r == 0)
                r = pthread_cond_timedwait(&mx->cv, &mx->mu, &until);
        char *text = mx->made >= mine && mx->text ? strdup(mx->text) : NULL;
        pthread_mutex_unlock(&mx->mu);
        if (!text)
                *why = "netd's loop did not answer within 2 s (busy, or stopping)";
        return text;
}

int netd_metrics_new(Manager *m, const char *listen, NetdMetrics **ret, KvErr *e) {
        int r;
        NetdMetrics *mx = calloc(1, sizeof *mx);
        if (!mx)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "metrics: out of memory");
        mx->m = m;
        pthread_mutex_init(&mx->mu, NULL);
        pthread_cond_init(&mx->cv, NULL);
        mx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (mx->efd < 0 || event_add_io(m->loop, mx->efd, EPOLLIN, on_ask, mx, &mx->src) < 0) {
                r = mx->efd < 0 ? negative_errno() : -ENOMEM;
                netd_metrics_free(mx);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "metrics: cannot watch the scrape requests");
        }
        if ((r = kv_metrics_server_new(listen, "config: 'metricsListen'", false, render_on_loop, mx, &mx->srv, e)) <
            0) {
                netd_metrics_free(mx);
                return r;
        }
        *ret = mx;
        return 0;
}

unsigned netd_metrics_port(const NetdMetrics *mx) {
        return mx ? kv_metrics_server_port(mx->srv) : 0;
}

NetdMetrics *netd_metrics_free(NetdMetrics *mx) {
        if (!mx)
                return NULL;
        kv_metrics_server_free(mx->srv); /* joins the thread: a scrape waiting for the loop times out first */
        if (mx->src)
                event_source_free(mx->src);
        if (mx->efd >= 0)
                close(mx->efd);
        pthread_cond_destroy(&mx->cv);
        pthread_mutex_destroy(&mx->mu);
        free(mx->text);
        free(mx);
        return NULL;
}
