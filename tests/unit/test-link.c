/* SPDX-License-Identifier: Apache-2.0 */
/* netd link layer against the real kernel. The binary first moves itself into a private network
 * namespace (the "node"); sandboxes are child processes in their own namespaces. Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "common/netns.h"
#include "netd/link/link.h"
#include "netd/link/netlink.h"
#include "netd/link/vlan.h"
#include "tests/unit/helpers.h"

#define BR "kvtbr0"

/* Like assert_int_equal(expr, 0), printing the KvErr `e` in scope on failure. */
#define assert_ok(expr)                                                                   \
        do {                                                                              \
                int _r = (expr);                                                          \
                if (_r != 0)                                                              \
                        print_message("%s = %d: %s (%s)\n", #expr, _r, e.msg, e.details); \
                assert_int_equal(_r, 0);                                                  \
        } while (0)

typedef struct Sbx {
        pid_t pid;
        int fd;
} Sbx;

static Sbx sbx_new(void) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || unshare(CLONE_NEWNET) < 0)
                        _exit(1);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(p[1]);
        char c;
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) pid);
        Sbx s = { .pid = pid, .fd = -1 };
        assert_int_equal(netns_open(path, &s.fd), 0);
        return s;
}

static void sbx_free(Sbx *s) {
        if (s->fd >= 0)
                close(s->fd);
        if (s->pid > 0) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, NULL, 0);
        }
        s->fd = -1;
        s->pid = 0;
}

/* Runs a shell command (in the sandbox if s != NULL); returns its exit status. */
static int shf(const Sbx *s, const char *fmt, ...) _printf_(2, 3);
static int shf(const Sbx *s, const char *fmt, ...) {
        char cmd[1024], full[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        if (s)
                snprintf(full, sizeof full, "nsenter --net=/proc/%d/ns/net sh -c '%s' >/dev/null 2>&1", (int) s->pid, cmd);
        else
                snprintf(full, sizeof full, "sh -c '%s' >/dev/null 2>&1", cmd);
        int st = system(full);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int group_setup(void **state) {
        (void) state;
        KvPrefix gw[] = { P("10.77.0.1/24"), P("fd77::1/64") };
        KvErr e = {};
        int ifindex;
        assert_ok(link_bridge_ensure(BR, 1400, gw, 2, &ifindex, &e));
        return 0;
}

static void test_bridge_ensure(void **state) {
        (void) state;
        KvPrefix gw[] = { P("10.77.0.1/24"), P("fd77::1/64") };
        KvErr e = {};
        int a = 0, b = 0;
        assert_ok(link_bridge_ensure(BR, 1400, gw, 2, &a, &e));
        assert_ok(link_bridge_ensure(BR, 1400, gw, 2, &b, &e));
        assert_true(a > 0);
        assert_int_equal(a, b);
        assert_int_equal(shf(NULL, "ip -d link show " BR " | grep -q \"mtu 1400\""), 0);
        assert_int_equal(shf(NULL, "ip -d link show " BR " | grep -q \"bridge forward_delay\""), 0);
        assert_int_equal(shf(NULL, "ip link show " BR " | grep -q \"<.*UP.*>\""), 0);
        assert_int_equal(shf(NULL, "test $(ip -o addr show dev " BR " | grep -c \"inet 10.77.0.1/24\") = 1"), 0);
        assert_int_equal(shf(NULL, "test $(ip -o addr show dev " BR " | grep -c \"inet6 fd77::1/64\") = 1"), 0);
        assert_int_equal(shf(NULL, "ip -o addr show dev " BR " | grep \"fd77::1/64\" | grep -vq tentative"), 0);
        /* kvnet created it: the node takes no router advertisement and no redirect from the guests' side */
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/" BR "/accept_ra) = 0"), 0);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/" BR "/accept_redirects) = 0"), 0);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv4/conf/" BR "/accept_redirects) = 0"), 0);
        /* a bridge it did not create keeps the node's settings */
        assert_int_equal(shf(NULL, "ip link add kvadopt0 type bridge"), 0);
        assert_ok(link_bridge_ensure("kvadopt0", 0, NULL, 0, NULL, &e));
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/kvadopt0/accept_ra) = 1"), 0);
        assert_int_equal(shf(NULL, "ip link del kvadopt0"), 0);

        /* Bridge set down from outside comes back up. */
        assert_int_equal(shf(NULL, "ip link set " BR " down"), 0);
        assert_ok(link_bridge_ensure(BR, 1400, gw, 2, &b, &e));
        assert_int_equal(shf(NULL, "ip link show " BR " | grep -q \"<.*UP.*>\""), 0);

        /* A non-bridge under the name is refused. */
        assert_int_equal(shf(NULL, "ip link add kvtdum0 type veth peer name kvtdum1"), 0);
        assert_int_equal(link_bridge_ensure("kvtdum0", 0, NULL, 0, &b, &e), -EEXIST);
        assert_non_null(strstr(e.msg, "not a bridge"));
        assert_int_equal(shf(NULL, "ip link del kvtdum0"), 0);
}

static int attach_container(const Sbx *s, const char *host, const char *ip4, const char *ip6, const uint8_t *mac,
                            LinkInfo *info, KvErr *e) {
        KvPrefix addrs[] = { P(ip4), P(ip6) };
        LinkRoute routes[] = { { .dst = P("0.0.0.0/0"), .gw = A("10.77.0.1"), .has_gw = true },
                               { .dst = P("::/0"), .gw = A("fd77::1"), .has_gw = true } };
        return link_container_attach(s->fd, "eth0", host, BR, 1400, mac, addrs, 2, routes, 2, info, e);
}

static void test_container_attach_ping(void **state) {
        (void) state;
        Sbx a = sbx_new(), b = sbx_new();
        const uint8_t mac[6] = { 0x02, 0x00, 0x00, 0x77, 0x00, 0x0a };
        LinkInfo ia, ib;
        KvErr e = {};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_ok(attach_container(&a, "kvh-a", "10.77.0.10/24", "fd77::10/64", mac, &ia, &e));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("container attach took %ld us\n",
                      (long) ((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
        assert_ok(attach_container(&b, "kvh-b", "10.77.0.11/24", "fd77::11/64", NULL, &ib, &e));

        assert_memory_equal(ia.sandbox_mac, mac, 6);
        assert_true(ia.host_ifindex > 0 && ia.sandbox_ifindex > 0);
        assert_int_equal(shf(NULL, "ip link show kvh-a | grep -q \"master " BR "\""), 0);
        assert_int_equal(shf(NULL, "ip link show kvh-a | grep -q \"<.*UP.*>\""), 0);
        assert_int_equal(shf(NULL, "ip link show kvh-a | grep -q \"mtu 1400\""), 0);
        assert_int_equal(shf(&a, "ip link show eth0 | grep -q \"link/ether 02:00:00:77:00:0a\""), 0);
        assert_int_equal(shf(&a, "ip link show eth0 | grep -q \"<.*UP.*>\""), 0);
        assert_int_equal(shf(&a, "ip -o addr show dev eth0 | grep -q \"inet 10.77.0.10/24\""), 0);
        assert_int_equal(shf(&a, "ip -o addr show dev eth0 | grep \"inet6 fd77::10/64\" | grep -vq tentative"), 0);
        assert_int_equal(shf(&a, "ip route show default | grep -q \"via 10.77.0.1 dev eth0\""), 0);
        assert_int_equal(shf(&a, "ip -6 route show default | grep -q \"via fd77::1 dev eth0\""), 0);

        KvPrefix addrs[] = { P("10.77.0.10/24"), P("fd77::10/64") };
        assert_ok(link_container_check(a.fd, "eth0", "kvh-a", BR, addrs, 2, &e));

        /* Sandbox to sandbox over the bridge, and to the gateway via the default routes. */
        assert_int_equal(shf(&a, "ping -c1 -W2 10.77.0.11"), 0);
        assert_int_equal(shf(&b, "ping -c1 -W2 10.77.0.10"), 0);
        assert_int_equal(shf(&a, "ping -c1 -W2 10.77.0.1"), 0);
        assert_int_equal(shf(&a, "ping -6 -c1 -W2 fd77::11"), 0);

        /* Check notices a removed address. */
        assert_int_equal(shf(&a, "ip addr del 10.77.0.10/24 dev eth0"), 0);
        kverr_clear(&e);
        assert_true(link_container_check(a.fd, "eth0", "kvh-a", BR, addrs, 2, &e) < 0);
        assert_non_null(strstr(e.msg, "10.77.0.10/24"));

        /* Detach, twice. */
        kverr_clear(&e);
        assert_ok(link_detach(a.fd, "eth0", NULL, "kvh-a", &e));
        assert_ok(link_detach(a.fd, "eth0", NULL, "kvh-a", &e));
        assert_false(link_exists(-1, "kvh-a"));
        assert_false(link_exists(a.fd, "eth0"));
        kverr_clear(&e);
        assert_true(link_container_check(a.fd, "eth0", "kvh-a", BR, addrs, 2, &e) < 0);
        assert_non_null(strstr(e.msg, "kvh-a"));

        assert_ok(link_detach(b.fd, "eth0", NULL, "kvh-b", &e));
        assert_false(link_exists(-1, "kvh-b"));
        sbx_free(&a);
        sbx_free(&b);
}

/* Retiring frees the names at once (the next ADD in the same sandbox must not wait for the reaper);
 * an IPv4-only pod interface and the node side get no IPv6 at all; the reap deletes the retired links. */
static void test_retire_frees_names(void **state) {
        (void) state;
        Sbx a = sbx_new();
        KvErr e = {};
        KvPrefix addrs[] = { P("10.77.0.20/24") };
        LinkRoute routes[] = { { .dst = P("0.0.0.0/0"), .gw = A("10.77.0.1"), .has_gw = true } };
        LinkInfo li;
        assert_ok(link_container_attach(a.fd, "eth0", "kvh-r", BR, 1400, NULL, addrs, 1, routes, 1, &li, &e));
        assert_int_equal(shf(&a, "test \"$(cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)\" = 1"), 0);
        assert_int_equal(shf(NULL, "test \"$(cat /proc/sys/net/ipv6/conf/kvh-r/disable_ipv6)\" = 1"), 0);
        assert_int_equal(shf(&a, "ping -c1 -W2 10.77.0.1"), 0);

        assert_ok(link_retire(a.fd, "eth0", NULL, "kvh-r", &e));
        assert_false(link_exists(-1, "kvh-r"));
        assert_false(link_exists(a.fd, "eth0"));
        assert_int_equal(shf(NULL, "ip -o link show | grep -q \": kvr[0-9a-f]*@\""), 0); /* renamed, not gone */
        /* the same names again, at once */
        assert_ok(link_container_attach(a.fd, "eth0", "kvh-r", BR, 1400, NULL, addrs, 1, routes, 1, &li, &e));
        assert_int_equal(shf(&a, "ping -c1 -W2 10.77.0.1"), 0);
        assert_ok(link_reap(-1, &e));
        assert_int_equal(shf(NULL, "ip -o link show | grep -q \": kvr[0-9a-f]*@\""), 1);
        assert_ok(link_detach(a.fd, "eth0", NULL, "kvh-r", &e));
        sbx_free(&a);
}

/* The VLAN link between a trunk and a VLAN's bridge, with its tagging programs; the guard (netd/link/vlan.c). The data
 * path itself is tested across two nodes in tests/integration/test-vlan.sh. */
static void test_vlan_link(void **state) {
        (void) state;
        KvErr e = {};
        char name[16], t[16], v[16];
        assert_ok(vlan_bridge_name("kvnet0", 100, name, &e));
        assert_string_equal(name, "kvnet0.100");
        assert_int_equal(vlan_bridge_name("kvnet-trunk-01", 4094, name, &e), -ENAMETOOLONG);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "'bridge' 'kvnet-trunk-01' is too long for 'vlan' 4094"));
        kverr_clear(&e);
        assert_int_equal(vlan_bridge_name("kvnet0", 4095, name, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'vlan' must be 1..4094, got 4095"));
        kverr_clear(&e);
        vlan_link_names("kvtbr0", 100, t, v);
        assert_int_equal(strncmp(t, "kvl", 3), 0);
        assert_int_equal(strncmp(v, "kvm", 3), 0);
        assert_string_equal(t + 3, v + 3);

        assert_ok(link_bridge_ensure("kvtbr0", 0, NULL, 0, NULL, &e));
        assert_ok(link_bridge_ensure("kvtbr0.100", 0, NULL, 0, NULL, &e));
        assert_ok(vlan_link_ensure("kvtbr0", "kvtbr0.100", 100, 0, &e));
        assert_ok(vlan_link_ensure("kvtbr0", "kvtbr0.100", 100, 0, &e)); /* again: programs replaced, no error */
        assert_int_equal(shf(NULL, "ip -o link show %s | grep -q 'master kvtbr0 '", t), 0);
        assert_int_equal(shf(NULL, "ip -o link show %s | grep -q 'master kvtbr0.100 '", v), 0);
        assert_int_equal(shf(NULL, "tc filter show dev %s ingress | grep -q vlan_to_trunk", t), 0);
        assert_int_equal(shf(NULL, "tc filter show dev %s egress | grep -q vlan_from_trunk", t), 0);
        assert_int_equal(shf(NULL, "tc filter show dev %s ingress | grep -c handle | grep -qx 1", t), 0);
        /* a missing bridge is an error that names it */
        assert_true(vlan_link_ensure("kvtbr0", "kvtnope.7", 7, 0, &e) < 0);
        assert_non_null(strstr(e.msg, "kvtnope.7"));
        kverr_clear(&e);

        /* the guard: both directions, idempotent, detectable */
        assert_int_equal(shf(NULL, "ip link add kvtg0 type veth peer name kvtg1"), 0);
        assert_int_equal(vlan_guard_present("kvtg0"), 0);
        assert_ok(vlan_guard_port("kvtg0", &e));
        assert_ok(vlan_guard_port("kvtg0", &e));
        assert_int_equal(vlan_guard_present("kvtg0"), 1);
        assert_int_equal(vlan_guard_present(t), 0); /* a different program there */
        assert_int_equal(shf(NULL, "tc filter show dev kvtg0 egress | grep -q untagged_only"), 0);
        assert_true(vlan_guard_port("kvtnolink", &e) < 0);
        assert_non_null(strstr(e.msg, "kvtnolink"));
        assert_int_equal(shf(NULL, "ip link del kvtg0; ip link del %s; ip link del kvtbr0.100", t), 0);
}

static void test_container_undo(void **state) {
        (void) state;
        Sbx a = sbx_new();
        KvErr e = {};
        LinkInfo info;

        /* A late failure (unreachable gateway) removes the veth again. */
        KvPrefix addrs[] = { P("10.77.0.30/24") };
        LinkRoute bad[] = { { .dst = P("0.0.0.0/0"), .gw = A("10.99.0.1"), .has_gw = true } };
        int r = link_container_attach(a.fd, "eth0", "kvh-u", BR, 0, NULL, addrs, 1, bad, 1, &info, &e);
        assert_true(r < 0);
        assert_int_equal(e.code, KV_ERR_INTERNAL);
        assert_non_null(strstr(e.msg, "10.99.0.1"));
        assert_false(link_exists(-1, "kvh-u"));
        assert_false(link_exists(a.fd, "eth0"));

        /* A name already taken in the sandbox: nothing left on the node. */
        assert_int_equal(shf(&a, "ip link add eth0 type veth peer name eth0p"), 0);
        kverr_clear(&e);
        r = link_container_attach(a.fd, "eth0", "kvh-u", BR, 0, NULL, addrs, 1, NULL, 0, &info, &e);
        assert_int_equal(r, -EEXIST);
        assert_non_null(strstr(e.msg, "creating veth 'kvh-u' -> 'eth0' in sandbox: File exists"));
        assert_false(link_exists(-1, "kvh-u"));
        assert_true(link_exists(a.fd, "eth0"));

        /* A closed netns fd is a bad environment. */
        kverr_clear(&e);
        r = link_container_attach(1000, "eth0", "kvh-u", BR, 0, NULL, addrs, 1, NULL, 0, &info, &e);
        assert_true(r < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_false(link_exists(-1, "kvh-u"));
        sbx_free(&a);
}

/* Opens the persistent tap from inside the sandbox like qemu would. */
static int tap_open(const Sbx *s, const char *name) {
        NetnsGuard g;
        assert_int_equal(netns_enter(s->fd, &g), 0);
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        assert_int_equal(netns_leave(&g), 0);
        assert_true(fd >= 0);
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
        strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
        assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
        return fd;
}

#define VNET_HDR_LEN 10

/* Guest side: ARP request for the gateway written into the tap; the bridge's reply must come back. */
static bool arp_roundtrip(int fd, const uint8_t mac[6]) {
        uint8_t f[VNET_HDR_LEN + 42] = {};
        uint8_t *eth = f + VNET_HDR_LEN, *arp = eth + 14;
        memset(eth, 0xff, 6);
        memcpy(eth + 6, mac, 6);
        eth[12] = 0x08, eth[13] = 0x06;
        const uint8_t hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
        memcpy(arp, hdr, 8);
        memcpy(arp + 8, mac, 6);
        const uint8_t spa[4] = { 10, 77, 0, 50 }, tpa[4] = { 10, 77, 0, 1 };
        memcpy(arp + 14, spa, 4);
        memcpy(arp + 24, tpa, 4);

        for (int attempt = 0; attempt < 3; attempt++) {
                if (write(fd, f, sizeof f) != (ssize_t) sizeof f)
                        return false;
                struct timespec t0;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (;;) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        if (poll(&p, 1, 500) <= 0)
                                break;
                        uint8_t buf[2048];
                        ssize_t n = read(fd, buf, sizeof buf);
                        if (n < VNET_HDR_LEN + 42)
                                continue;
                        const uint8_t *re = buf + VNET_HDR_LEN, *ra = re + 14;
                        if (re[12] == 0x08 && re[13] == 0x06 && ra[7] == 2 && memcmp(re, mac, 6) == 0 &&
                            memcmp(ra + 14, tpa, 4) == 0 && memcmp(ra + 24, spa, 4) == 0)
                                return true;
                }
        }
        return false;
}

static void test_vm_attach(void **state) {
        (void) state;
        Sbx a = sbx_new();
        const uint8_t gmac[6] = { 0x02, 0x00, 0x00, 0x77, 0x00, 0x50 };
        LinkInfo info;
        KvErr e = {};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_ok(link_vm_attach(a.fd, "kvtap0", "kvs0", "kvh-v", BR, 1400, gmac, &info, &e));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("vm attach took %ld us\n",
                      (long) ((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
        assert_memory_equal(info.sandbox_mac, gmac, 6);
        assert_true(info.host_ifindex > 0 && info.sandbox_ifindex > 0);

        assert_int_equal(shf(NULL, "ip link show kvh-v | grep -q \"master " BR "\""), 0);
        assert_int_equal(shf(&a, "ip -d link show kvtap0 | grep -q \"tun type tap\""), 0);
        assert_int_equal(shf(&a, "ip -d link show kvtap0 | grep -q \"mtu 1400\""), 0);
        assert_int_equal(shf(&a, "ip -d link show kvtap0 | grep -q \"vnet_hdr on\""), 0);
        assert_int_equal(shf(&a, "tc qdisc show dev kvtap0 | grep -q clsact"), 0);
        assert_int_equal(shf(&a, "tc filter show dev kvtap0 ingress | grep -q \"Egress Redirect to device kvs0\""), 0);
        assert_int_equal(shf(&a, "tc filter show dev kvs0 ingress | grep -q \"Egress Redirect to device kvtap0\""), 0);
        assert_int_equal(shf(&a, "ip -o addr show | grep -q \"inet \""), 1); /* not even 127.0.0.1: lo is down */
        assert_ok(link_vm_check(a.fd, "kvtap0", "kvs0", "kvh-v", BR, &e));

        int fd = tap_open(&a, "kvtap0");
        assert_true(arp_roundtrip(fd, gmac));
        close(fd);

        /* Check notices a removed filter. */
        assert_int_equal(shf(&a, "tc filter del dev kvs0 ingress"), 0);
        kverr_clear(&e);
        assert_true(link_vm_check(a.fd, "kvtap0", "kvs0", "kvh-v", BR, &e) < 0);
        assert_non_null(strstr(e.msg, "redirect filter 'kvs0' -> 'kvtap0' missing"));

        kverr_clear(&e);
        assert_ok(link_detach(a.fd, "kvs0", "kvtap0", "kvh-v", &e));
        assert_ok(link_detach(a.fd, "kvs0", "kvtap0", "kvh-v", &e));
        assert_false(link_exists(-1, "kvh-v"));
        assert_false(link_exists(a.fd, "kvtap0"));
        assert_false(link_exists(a.fd, "kvs0"));
        sbx_free(&a);
}

static void test_vm_undo(void **state) {
        (void) state;
        Sbx a = sbx_new();
        const uint8_t gmac[6] = { 0x02, 0x00, 0x00, 0x77, 0x00, 0x51 };
        LinkInfo info;
        KvErr e = {};

        /* The sandbox veth name is taken: the tap made before must go again. */
        assert_int_equal(shf(&a, "ip link add kvs0 type veth peer name kvs0p"), 0);
        int r = link_vm_attach(a.fd, "kvtap0", "kvs0", "kvh-w", BR, 0, gmac, &info, &e);
        assert_int_equal(r, -EEXIST);
        assert_non_null(strstr(e.msg, "kvs0"));
        assert_false(link_exists(a.fd, "kvtap0"));
        assert_false(link_exists(-1, "kvh-w"));

        /* The tap name is taken: refused, and the existing tap is left alone. */
        assert_int_equal(shf(&a, "ip tuntap add dev kvtap1 mode tap"), 0);
        kverr_clear(&e);
        r = link_vm_attach(a.fd, "kvtap1", "kvs1", "kvh-w", BR, 0, gmac, &info, &e);
        assert_int_equal(r, -EEXIST);
        assert_non_null(strstr(e.msg, "creating tap 'kvtap1' in sandbox"));
        assert_true(link_exists(a.fd, "kvtap1"));
        assert_false(link_exists(-1, "kvh-w"));
        sbx_free(&a);
}

static void test_vm_chained(void **state) {
        (void) state;
        Sbx a = sbx_new();
        assert_int_equal(shf(&a, "ip link add ceth0 address 02:00:00:77:00:60 type veth peer name ceth0p && ip link set ceth0p up && ip link set ceth0 up && "
                                 "ip addr add 10.77.0.60/24 dev ceth0 && ip addr add fd77::60/64 dev ceth0 nodad"),
                         0);
        LinkInfo info;
        KvPrefix got[4];
        size_t n = 0;
        KvErr e = {};
        assert_ok(link_vm_attach_chained(a.fd, "kvtap0", "ceth0", 1400, &info, got, 4, &n, &e));
        assert_int_equal(n, 2);
        KvPrefix p4 = P("10.77.0.60/24"), p6 = P("fd77::60/64");
        bool f4 = false, f6 = false;
        for (size_t i = 0; i < n; i++) {
                f4 |= got[i].prefixlen == 24 && kv_addr_equal(&got[i].addr, &p4.addr);
                f6 |= got[i].prefixlen == 64 && kv_addr_equal(&got[i].addr, &p6.addr);
        }
        assert_true(f4 && f6);
        const uint8_t cmac[6] = { 0x02, 0x00, 0x00, 0x77, 0x00, 0x60 };
        assert_memory_equal(info.sandbox_mac, cmac, 6);
        assert_int_equal(shf(&a, "ip -o addr show dev ceth0 | grep -q \"10.77.0.60\""), 1);
        assert_int_equal(shf(&a, "ip -o addr show dev ceth0 | grep -q \"fd77::60\""), 1);
        assert_ok(link_vm_check(a.fd, "kvtap0", "ceth0", NULL, NULL, &e));
        assert_ok(link_detach(a.fd, NULL, "kvtap0", NULL, &e));
        assert_false(link_exists(a.fd, "kvtap0"));
        assert_true(link_exists(a.fd, "ceth0"));
        sbx_free(&a);
}

/* The kernel's extended ack reaches the KvErr, after the operation and the errno. */
static void test_kernel_ext_ack(void **state) {
        (void) state;
        Sbx a = sbx_new();
        KvErr e = {};
        LinkInfo info;
        KvPrefix addrs[] = { P("10.77.0.31/24") };
        /* IFLA_IFNAME longer than IFNAMSIZ - 1 fails the kernel's attribute policy, which says so. */
        const char *longname = "kvh-0123456789abcdef";
        int r = link_container_attach(a.fd, "eth0", longname, BR, 0, NULL, addrs, 1, NULL, 0, &info, &e);
        assert_true(r < 0);
        assert_int_equal(e.code, KV_ERR_INTERNAL);
        char want[256];
        snprintf(want, sizeof want, "creating veth '%s' -> 'eth0' in sandbox: %s (kernel: ", longname, strerror(-r));
        print_message("%s\n", e.msg);
        assert_non_null(strstr(e.msg, want));
        assert_non_null(strstr(e.msg, "policy"));
        assert_false(link_exists(-1, longname));
        assert_false(link_exists(a.fd, "eth0"));

        /* The layer itself: the offending attribute is named by its type (IFLA_IFNAME), and the kernel's
         * words are kept only for the errno they explain and only until the next request. */
        _cleanup_nl_sock_ NlSock *sk = NULL;
        assert_int_equal(lnl_open(-1, &sk), 0);
        r = lnl_veth_create(sk, longname, 0, 0, "kvh-p", -1, NULL);
        assert_true(r < 0);
        const char *k = nl_ext_ack(sk, r);
        assert_non_null(k);
        snprintf(want, sizeof want, "attribute %d", IFLA_IFNAME);
        assert_non_null(strstr(k, want));
        assert_null(nl_ext_ack(sk, r == -EINVAL ? -ERANGE : -EINVAL));
        kverr_clear(&e);
        assert_int_equal(nl_error(&e, sk, r, "creating veth '%s'", longname), r);
        snprintf(want, sizeof want, "creating veth '%s': %s (kernel: %s)", longname, strerror(-r), k);
        assert_string_equal(e.msg, want);
        LnlLink l;
        assert_int_equal(lnl_link_get(sk, BR, &l), 0);
        assert_null(nl_ext_ack(sk, r));
        /* Without an extended ack (no socket, or the kernel said nothing) the message is as before. */
        kverr_clear(&e);
        assert_int_equal(nl_error(&e, NULL, -EEXIST, "creating veth 'x'"), -EEXIST);
        assert_string_equal(e.msg, "creating veth 'x': File exists");
        sbx_free(&a);
}

/* Messages stay inside their buffer: an attribute that does not fit is refused and nothing is written. */
static void test_nl_msg_bounds(void **state) {
        (void) state;
        _cleanup_nl_sock_ NlSock *sk = NULL;
        assert_int_equal(lnl_open(-1, &sk), 0);
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_GETLINK, 0, &ifi, sizeof ifi);
        assert_int_equal(m->nlmsg_len, NLMSG_LENGTH(sizeof ifi));
        static char big[NL_MSG_MAX];
        memset(big, 'x', sizeof big - 1);
        uint32_t len = m->nlmsg_len;
        assert_int_equal(nl_put(m, IFLA_IFNAME, sizeof big, big), -EMSGSIZE);
        assert_int_equal(nl_put_str(m, IFLA_IFNAME, big), -EMSGSIZE);
        assert_int_equal(nl_put_raw(m, big, sizeof big), -EMSGSIZE);
        assert_int_equal(m->nlmsg_len, len);
        struct nlattr *nest = nl_nest_start(m, IFLA_LINKINFO);
        assert_non_null(nest);
        nl_nest_end(m, nest);
        assert_int_equal(m->nlmsg_len, len + NLA_HDRLEN); /* only the nest's header */
        /* Parsed back: the nest is there, empty. */
        const struct nlattr *tb[IFLA_MAX + 1];
        assert_int_equal(nl_parse(m, sizeof ifi, tb, IFLA_MAX), 0);
        assert_non_null(tb[IFLA_LINKINFO]);
        assert_null(tb[IFLA_IFNAME]);
        /* A family header longer than the message is refused. */
        assert_int_equal(nl_parse(m, m->nlmsg_len, tb, IFLA_MAX), -EBADMSG);
}

/* What a restarted netd does with the redirect routes a previous run left: every route of one protocol
 * goes, in any table and family; the others stay. */
static void test_route_flush_protocol(void **state) {
        (void) state;
        assert_int_equal(shf(NULL, "ip route add 198.51.100.7/32 dev " BR " proto 118"), 0);
        assert_int_equal(shf(NULL, "ip route add 198.51.100.8/32 via 10.77.0.9 dev " BR " onlink proto 118 table 100"), 0);
        assert_int_equal(shf(NULL, "ip -6 route add 2001:db8::7/128 dev " BR " proto 118"), 0);
        assert_int_equal(shf(NULL, "ip route add 198.51.100.9/32 dev " BR " proto static"), 0);
        _cleanup_nl_sock_ NlSock *sk = NULL;
        assert_int_equal(lnl_open(-1, &sk), 0);
        assert_int_equal(lnl_route_flush_protocol(sk, 118), 3);
        assert_int_equal(shf(NULL, "test -z \"$(ip route show table all proto 118)\""), 0);
        assert_int_equal(shf(NULL, "test -z \"$(ip -6 route show table all proto 118)\""), 0);
        assert_int_equal(shf(NULL, "ip route show proto static | grep -q 198.51.100.9"), 0);
        assert_int_equal(lnl_route_flush_protocol(sk, 118), 0);
        assert_int_equal(shf(NULL, "ip route del 198.51.100.9/32"), 0);
}

/* IPv6 forwarding going on must not cost the node's uplinks their router advertisements (SLAAC): accept_ra 1
 * becomes 2 on every interface that had it, the others stay; once forwarding is on, nothing is changed. */
static void test_keep_router_advertisements(void **state) {
        (void) state;
        KvErr e = {};
        assert_int_equal(shf(NULL, "echo 0 > /proc/sys/net/ipv6/conf/all/forwarding"), 0);
        assert_int_equal(shf(NULL, "ip link add kvra0 type veth peer name kvra1"), 0);
        assert_int_equal(shf(NULL, "echo 1 > /proc/sys/net/ipv6/conf/kvra0/accept_ra && "
                                   "echo 0 > /proc/sys/net/ipv6/conf/kvra1/accept_ra"),
                         0);
        int n = link_keep_router_advertisements(&e);
        assert_true(n >= 1);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/kvra0/accept_ra) = 2"), 0);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/kvra1/accept_ra) = 0"), 0);
        assert_ok(link_enable_forwarding(&e));
        assert_int_equal(shf(NULL, "echo 1 > /proc/sys/net/ipv6/conf/kvra0/accept_ra"), 0);
        assert_int_equal(link_keep_router_advertisements(&e), 0);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/kvra0/accept_ra) = 1"), 0);
        assert_int_equal(shf(NULL, "ip link del kvra0"), 0);
}

static void test_forwarding(void **state) {
        (void) state;
        KvErr e = {};
        assert_ok(link_enable_forwarding(&e));
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv4/ip_forward) = 1"), 0);
        assert_int_equal(shf(NULL, "test $(cat /proc/sys/net/ipv6/conf/all/forwarding) = 1"), 0);
}

int main(void) {
        if (geteuid() != 0) {
                printf("SKIP: test-link needs root (network namespaces)\n");
                return 0;
        }
        /* Never touch the host's network: everything below happens in a private namespace. */
        if (unshare(CLONE_NEWNET) < 0) {
                printf("SKIP: unshare(CLONE_NEWNET): %s\n", strerror(errno));
                return 0;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bridge_ensure),  cmocka_unit_test(test_container_attach_ping),
                cmocka_unit_test(test_vlan_link),      cmocka_unit_test(test_container_undo),
                cmocka_unit_test(test_vm_attach),      cmocka_unit_test(test_vm_undo),
                cmocka_unit_test(test_keep_router_advertisements),
                cmocka_unit_test(test_vm_chained),     cmocka_unit_test(test_forwarding),
                cmocka_unit_test(test_retire_frees_names), cmocka_unit_test(test_kernel_ext_ack),
                cmocka_unit_test(test_route_flush_protocol), cmocka_unit_test(test_nl_msg_bounds),
        };
        return cmocka_run_group_tests(tests, group_setup, NULL);
}
