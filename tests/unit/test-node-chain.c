/* SPDX-License-Identifier: Apache-2.0 */
/* node/ against real plugins: a sandbox made by node/sandbox.c, the reference bridge + host-local chain
 * run by node_cni_add() from a fresh network namespace of this process (the "node"; the host's own
 * network is never touched), the interface and address checked inside the sandbox, then DEL leaves no
 * cache entry and no link, and the sandbox is deleted; the same with kvnet served by a kvnet-netd
 * started in that namespace. Skipped without root or the reference plugins. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "node/node.h"
#include "tmpdir.h"

#define REF_DIR "/usr/lib/cni"

static int sh(const char *fmt, const char *a, const char *b) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, fmt, a, b);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

extern char **environ;
static bool in_node_ns;

/* This process becomes the node (once): bridges and rules land here, never on the host. */
static void enter_node_ns(void) {
        if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0)
                skip();
        if (!in_node_ns) {
                assert_int_equal(unshare(CLONE_NEWNET), 0);
                assert_int_equal(system("ip link set lo up"), 0);
                in_node_ns = true;
        }
}

/* conf run from path into a new sandbox: the address is in the sandbox and the result cached; CHECK
 * passes; DEL leaves no cache entry and no link, and succeeds again; the sandbox is deleted. */
static void chain_roundtrip(const char *conf, const char *path, const char *cache, const char *netname,
                            const char *cid) {
        char res_path[512];
        NodeErr e = { 0 };
        NodeCniNetwork *net = NULL;
        assert_int_equal(node_cni_network_parse(conf, strlen(conf), "test", &net, &e), 0);
        NodeCniRuntime *rt = NULL;
        assert_int_equal(node_cni_runtime_new(path, cache, &rt, &e), 0);
        assert_int_equal(node_cni_runtime_set_env(rt, environ), 0);
        NodeSandbox *sbx = NULL;
        if (node_sandbox_new("kvt-node", &sbx, &e) < 0)
                fail_msg("sandbox: %s: %s", e.msg, e.details);
        assert_int_equal(node_sandbox_verify(sbx), 0);

        NodePodRef pod = { "default", "virt-launcher-vm1", "uid-1" };
        NodeCniAttachment a = { .container_id = cid, .netns = sbx->path, .ifname = "eth0", .pod = &pod };
        NodeCniResult *res = NULL;
        int r = node_cni_add(rt, net, &a, NODE_CNI_ADD_ROLLBACK, &res, &e);
        if (r < 0)
                fail_msg("ADD: %s: %s (%s)", e.msg, e.details, e.output ? e.output : "");
        assert_true(res->n_ips >= 1);
        assert_true(res->ips[0].interface >= 0);
        assert_string_equal(res->interfaces[res->ips[0].interface].sandbox, sbx->path);
        char addr[64];
        snprintf(addr, sizeof addr, "%s", res->ips[0].address);
        assert_int_equal(sh("ip -n %s -4 -o addr show dev eth0 | grep -qF ' %s '", sbx->name, addr), 0);
        snprintf(res_path, sizeof res_path, "%s/results/%s-%s-eth0", cache, netname, cid);
        assert_int_equal(access(res_path, F_OK), 0);

        assert_int_equal(node_cni_check(rt, net, &a, &e), 0);
        assert_int_equal(node_cni_del(rt, net, &a, &e), 0);
        assert_int_not_equal(access(res_path, F_OK), 0);
        assert_int_not_equal(sh("ip -n %s link show dev eth0 >/dev/null 2>&1%s", sbx->name, ""), 0);
        /* a second DEL of what is gone succeeds */
        assert_int_equal(node_cni_del(rt, net, &a, &e), 0);

        assert_int_equal(node_sandbox_delete(sbx, &e), 0);
        assert_int_not_equal(access(sbx->path, F_OK), 0);
        assert_int_equal(node_sandbox_delete(sbx, &e), 0); /* gone already */

        node_cni_result_free(res);
        node_sandbox_free(sbx);
        node_cni_runtime_free(rt);
        node_cni_network_free(net);
        node_err_done(&e);
}

static void test_bridge_chain_in_sandbox(void **state) {
        (void) state;
        if (access(REF_DIR "/bridge", X_OK) < 0 || access(REF_DIR "/host-local", X_OK) < 0)
                skip();
        enter_node_ns();

        char tmp[] = "/tmp/kvnet-node-chain.XXXXXX";
        assert_non_null(mkdtemp(tmp));
        char conf[4096], cache[256];
        snprintf(cache, sizeof cache, "%s/cache", tmp);
        snprintf(conf, sizeof conf,
                 "{\"cniVersion\":\"1.0.0\",\"name\":\"nodetest\",\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"ntbr0\","
                 "\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":"
                 "\"10.66.0.0/24\",\"gateway\":\"10.66.0.1\"}]]}}]}",
                 tmp);

        chain_roundtrip(conf, REF_DIR, cache, "nodetest", "cid-node-1");
        tmpdir_remove(tmp);
}


/* kvnet as the main plugin, served by a kvnet-netd started in this node namespace. */
static void test_kvnet_chain_in_sandbox(void **state) {
        (void) state;
        char exe[PATH_MAX] = "", bindir[PATH_MAX], netd[PATH_MAX + 16], kvnet[PATH_MAX + 16];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        assert_true(n > 0);
        exe[n] = '\0';
        snprintf(bindir, sizeof bindir, "%s/../bin", dirname(exe));
        snprintf(netd, sizeof netd, "%s/kvnet-netd", bindir);
        snprintf(kvnet, sizeof kvnet, "%s/kvnet", bindir);
        if (access(netd, X_OK) < 0 || access(kvnet, X_OK) < 0)
                skip();
        enter_node_ns();

        char tmp[] = "/tmp/kvnet-node-kv.XXXXXX";
        assert_non_null(mkdtemp(tmp));
        char sock[128], state_dir[128], logf[128], cache[128], conf[2048];
        snprintf(sock, sizeof sock, "%s/n.sock", tmp);
        snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
        snprintf(logf, sizeof logf, "%s/netd.log", tmp);
        snprintf(cache, sizeof cache, "%s/cache", tmp);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(127);
                execl(netd, netd, "--socket", sock, "--state-dir", state_dir, "--no-fsync", (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 100 && access(sock, F_OK) < 0; i++)
                usleep(100 * 1000);
        assert_int_equal(access(sock, F_OK), 0);

        snprintf(conf, sizeof conf,
                 "{\"cniVersion\":\"1.0.0\",\"name\":\"nodekv\",\"plugins\":[{\"type\":\"kvnet\",\"binding\":\"bridge\","
                 "\"bridge\":\"ntkv0\",\"ipMasq\":false,\"socket\":\"%s\",\"ipam\":{\"ranges\":[[{\"subnet\":"
                 "\"10.67.0.0/24\",\"gateway\":\"10.67.0.1\"}]]}}]}",
                 sock);
        chain_roundtrip(conf, bindir, cache, "nodekv", "cid-node-kv");

        kill(pid, SIGTERM);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        tmpdir_remove(tmp);
}

static void test_sandbox_prefix(void **state) {
        (void) state;
        NodeSandbox *s = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_sandbox_new("Bad/Prefix", &s, &e), -EINVAL);
        assert_int_equal(e.kind, NODE_ERR_SANDBOX);
        assert_non_null(strstr(e.msg, "Bad/Prefix"));
        node_err_done(&e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sandbox_prefix),
                cmocka_unit_test(test_bridge_chain_in_sandbox),
                cmocka_unit_test(test_kvnet_chain_in_sandbox),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
