/* SPDX-License-Identifier: Apache-2.0 */
/* node/ against real plugins: a sandbox made by node/sandbox.c, the reference bridge + host-local chain
 * run by node_cni_add() from a fresh network namespace of this process (the "node"; the host's own
 * network is never touched), the interface and address checked inside the sandbox, then DEL leaves no
 * cache entry and no link, and the sandbox is deleted. Skipped without root or the reference plugins. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>

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

static void test_bridge_chain_in_sandbox(void **state) {
        (void) state;
        if (geteuid() != 0 || access(REF_DIR "/bridge", X_OK) < 0 || access(REF_DIR "/host-local", X_OK) < 0 ||
            system("ip -V >/dev/null 2>&1") != 0)
                skip();
        /* this process becomes the node: the bridge lands here, not on the host */
        assert_int_equal(unshare(CLONE_NEWNET), 0);

        char tmp[] = "/tmp/kvnet-node-chain.XXXXXX";
        assert_non_null(mkdtemp(tmp));
        char conf[4096], cache[256], res_path[512];
        snprintf(cache, sizeof cache, "%s/cache", tmp);
        snprintf(conf, sizeof conf,
                 "{\"cniVersion\":\"1.0.0\",\"name\":\"nodetest\",\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"ntbr0\","
                 "\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s/ipam\",\"ranges\":[[{\"subnet\":"
                 "\"10.66.0.0/24\",\"gateway\":\"10.66.0.1\"}]]}}]}",
                 tmp);

        NodeErr e = { 0 };
        NodeCniNetwork *net = NULL;
        assert_int_equal(node_cni_network_parse(conf, strlen(conf), "test", &net, &e), 0);
        NodeCniRuntime *rt = NULL;
        assert_int_equal(node_cni_runtime_new(REF_DIR, cache, &rt, &e), 0);
        NodeSandbox *sbx = NULL;
        if (node_sandbox_new("kvt-node", &sbx, &e) < 0)
                fail_msg("sandbox: %s: %s", e.msg, e.details);
        assert_int_equal(node_sandbox_verify(sbx), 0);

        NodePodRef pod = { "default", "virt-launcher-vm1", "uid-1" };
        NodeCniAttachment a = { .container_id = "cid-node-1", .netns = sbx->path, .ifname = "eth0", .pod = &pod };
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
        snprintf(res_path, sizeof res_path, "%s/results/nodetest-cid-node-1-eth0", cache);
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
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
