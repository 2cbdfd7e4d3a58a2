/* SPDX-License-Identifier: Apache-2.0 */
/* common/: addresses, MACs, JSON field access, atomic files, the socket protocol's framing. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/addr.h"
#include "common/array.h"
#include "common/base64.h"
#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/netns.h"
#include "common/proto.h"
#include "common/tokenbucket.h"
#include "common/unixsock.h"

static void test_addr(void **state) {
        (void) state;
        KvPrefix p;
        char buf[KV_ADDR_STRLEN];
        assert_int_equal(kv_prefix_parse("10.88.0.7/24", &p), 0);
        assert_string_equal(kv_prefix_fmt(&p, buf), "10.88.0.7/24");
        KvPrefix n = kv_prefix_network(&p);
        assert_string_equal(kv_prefix_fmt(&n, buf), "10.88.0.0/24");
        KvAddr a;
        assert_int_equal(kv_addr_parse("10.88.0.255", &a), 0);
        assert_true(kv_prefix_contains(&p, &a));
        assert_int_equal(kv_addr_parse("10.88.1.0", &a), 0);
        assert_false(kv_prefix_contains(&p, &a));
        assert_int_equal(kv_prefix_parse("fd88::1/64", &p), 0);
        assert_string_equal(kv_prefix_fmt(&p, buf), "fd88::1/64");
        assert_int_equal(kv_addr_parse("fd88::ffff", &a), 0);
        assert_true(kv_addr_next(&a));
        assert_string_equal(kv_addr_fmt(&a, buf), "fd88::1:0");
        assert_int_equal(kv_addr_parse("255.255.255.255", &a), 0);
        assert_false(kv_addr_next(&a));
        /* rejected */
        assert_int_equal(kv_prefix_parse("10.0.0.1", &p), -EINVAL);
        assert_int_equal(kv_prefix_parse("10.0.0.1/33", &p), -EINVAL);
        assert_int_equal(kv_prefix_parse("10.0.0.1/", &p), -EINVAL);
        assert_int_equal(kv_prefix_parse("10.0.0.1/2x", &p), -EINVAL);
        assert_int_equal(kv_prefix_parse("fd::/129", &p), -EINVAL);
        assert_int_equal(kv_addr_parse("10.0.0.256", &a), -EINVAL);
        assert_int_equal(kv_addr_parse("", &a), -EINVAL);
        uint8_t mac[6];
        char mb[KV_MAC_STRLEN];
        assert_int_equal(kv_mac_parse("02:00:5E:10:00:01", mac), 0);
        assert_string_equal(kv_mac_fmt(mac, mb), "02:00:5e:10:00:01");
        assert_false(kv_mac_is_zero(mac));
        static const uint8_t zero_mac[6], last_bit[6] = { 0, 0, 0, 0, 0, 1 };
        assert_true(kv_mac_is_zero(zero_mac));
        assert_false(kv_mac_is_zero(last_bit));
        assert_int_equal(kv_mac_parse("02:00:5e:10:00", mac), -EINVAL);
        assert_int_equal(kv_mac_parse("02:00:5e:10:00:01:02", mac), -EINVAL);
        assert_int_equal(kv_mac_parse("zz:00:5e:10:00:01", mac), -EINVAL);
}

static void test_json_get(void **state) {
        (void) state;
        json_t *o = json_loads("{\"s\":\"x\",\"i\":5000,\"b\":true,\"n\":null,\"a\":[1]}", 0, NULL);
        KvErr e = {};
        long long x = 7;
        assert_int_equal(json_get_int(o, "netconf", "i", false, 0, 4094, &x, &e), -ERANGE);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_string_equal(e.msg, "netconf: 'i' must be 0..4094, got 5000");
        assert_int_equal(x, 7);
        kverr_clear(&e);
        const char *s = NULL;
        assert_int_equal(json_get_string(o, "netconf", "i", false, &s, &e), -EINVAL);
        assert_string_equal(e.msg, "netconf: 'i' must be a string, got integer");
        kverr_clear(&e);
        assert_int_equal(json_get_string(o, "netconf", "n", false, &s, &e), 0); /* null = absent */
        assert_null(s);
        assert_int_equal(json_get_string(o, "netconf", "missing", true, &s, &e), -EINVAL);
        assert_string_equal(e.msg, "netconf: 'missing' is required");
        kverr_clear(&e);
        bool b = false;
        assert_int_equal(json_get_bool(o, "netconf", "b", true, &b, &e), 1);
        assert_true(b);
        json_t *arr = NULL;
        assert_int_equal(json_get_array(o, "netconf", "a", true, &arr, &e), 1);
        assert_int_equal(json_get_object(o, "netconf", "a", true, &arr, &e), -EINVAL);
        json_decref(o);

        json_t *v = NULL;
        kverr_clear(&e);
        assert_int_equal(json_parse_object("[1,2]", 5, 100, "stdin", &v, &e), -EBADMSG);
        assert_string_equal(e.msg, "stdin: must be a JSON object, got array");
        kverr_clear(&e);
        assert_int_equal(json_parse_object("{\"a\":1,\"a\":2}", 13, 100, "stdin", &v, &e), -EBADMSG);
        assert_int_equal(e.code, KV_ERR_DECODE);
        kverr_clear(&e);
        assert_int_equal(json_parse_object("{}", 2, 1, "stdin", &v, &e), -EMSGSIZE);
        assert_string_equal(e.msg, "stdin: input is 2 bytes, limit is 1");
}

static void test_fileio(void **state) {
        (void) state;
        char dir[] = "/tmp/kvnet-test-common.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[256], sub[256];
        snprintf(path, sizeof path, "%s/a/b/c", dir);
        assert_int_equal(mkdir_p(path, 0700), 0);
        assert_int_equal(mkdir_p(path, 0700), 0);
        snprintf(path, sizeof path, "%s/a/f.json", dir);
        assert_int_equal(write_file_atomic(path, "one", 3, true), 0);
        assert_int_equal(write_file_atomic(path, "second", 6, true), 0);
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(read_file_max(path, 100, &text, &len), 0);
        assert_string_equal(text, "second");
        free(text);
        assert_int_equal(read_file_max(path, 3, &text, &len), -EFBIG);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(unlink_durable(path, true), 0);
        assert_int_equal(unlink_durable(path, true), 0);
        snprintf(sub, sizeof sub, "rm -rf '%s'", dir);
        assert_int_equal(system(sub), 0);
}

/* A peer that answers each line with a canned reply, to test the client's framing. */
static void *echo_server(void *arg) {
        int fd = *(int *) arg;
        char buf[65536];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
                char *nl = memchr(buf, '\n', len);
                if (!nl)
                        continue;
                const char *reply = strstr(buf, "\"fail\"")
                                            ? "{\"ok\":false,\"code\":7,\"msg\":\"netconf: bad\",\"details\":\"d\"}\n"
                                            : "{\"ok\":true,\"result\":{\"x\":1}}\n";
                if (write(fd, reply, strlen(reply)) < 0)
                        break;
                len = 0;
        }
        close(fd);
        return NULL;
}

static void test_proto(void **state) {
        (void) state;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, echo_server, &sv[1]), 0);
        json_t *res = NULL;
        KvErr e = {};
        assert_int_equal(proto_call(sv[0], "ping", NULL, 2000, &res, &e), 0);
        assert_int_equal(json_integer_value(json_object_get(res, "x")), 1);
        json_decref(res);
        assert_int_equal(proto_call(sv[0], "fail", NULL, 2000, &res, &e), -EPROTO);
        assert_int_equal(e.code, 7);
        assert_string_equal(e.msg, "netconf: bad");
        assert_string_equal(e.details, "d");
        close(sv[0]);
        pthread_join(t, NULL);

        kverr_clear(&e);
        assert_true(proto_call_path("/nonexistent/kvnet.sock", "ping", NULL, 100, &res, &e) < 0);
        assert_int_equal(e.code, KV_ERR_TRY_AGAIN);
}

/* array_grow: doubles from 8 until need fits, keeps the contents, refuses a size that overflows. */
static void test_array_grow(void **state) {
        (void) state;
        _cleanup_free_ int *v = NULL;
        size_t cap = 0;
        assert_int_equal(ARRAY_GROW(v, cap, 1), 0);
        assert_non_null(v);
        assert_int_equal(cap, 8);
        for (int i = 0; i < 8; i++)
                v[i] = i;
        int *before = v;
        assert_int_equal(ARRAY_GROW(v, cap, 8), 0); /* already fits: nothing changes */
        assert_ptr_equal(v, before);
        assert_int_equal(ARRAY_GROW(v, cap, 20), 0);
        assert_int_equal(cap, 32);
        for (int i = 0; i < 8; i++)
                assert_int_equal(v[i], i);
        assert_int_equal(ARRAY_GROW(v, cap, SIZE_MAX / 2), -ENOMEM);
        assert_int_equal(cap, 32);
        assert_int_equal(v[7], 7);
        void *p = v;
        assert_int_equal(array_grow(&p, &cap, SIZE_MAX, 1), -ENOMEM);
        assert_ptr_equal(p, v);
}

/* read_append_until: data, the deadline, the cap, EOF, on a pipe. */
static void test_read_append(void **state) {
        (void) state;
        int p[2];
        assert_int_equal(pipe(p), 0);
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0, len = 0;
        assert_int_equal(read_append_until(p[0], 4, now_usec() + 10000, &buf, &cap, &len), -ETIMEDOUT);
        assert_int_equal(write(p[1], "abc", 3), 3);
        assert_int_equal(read_append_until(p[0], 4, now_usec() + 1000000, &buf, &cap, &len), 1);
        assert_int_equal(len, 3);
        assert_string_equal(buf, "abc");
        assert_int_equal(write(p[1], "de", 2), 2);
        assert_int_equal(read_append_until(p[0], 4, now_usec() + 1000000, &buf, &cap, &len), -EFBIG);
        close(p[1]);
        len = 0;
        assert_int_equal(read_append_until(p[0], 4, now_usec() + 1000000, &buf, &cap, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(buf, "");
        close(p[0]);
}

/* A socket path over sun_path's 107 bytes is refused where it is used, naming it; 107 is fine. */
static void test_base64(void **state) {
        (void) state;
        /* RFC 4648 section 10's vectors, both ways */
        static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
        for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
                _cleanup_free_ char *enc = NULL, *dec = NULL;
                size_t n = 99;
                assert_int_equal(base64_encode(plain[i], strlen(plain[i]), &enc), 0);
                assert_string_equal(enc, coded[i]);
                assert_int_equal(base64_decode(coded[i], &dec, &n), 0);
                assert_int_equal(n, strlen(plain[i]));
                assert_string_equal(dec, plain[i]);
        }
        /* wrapped input (PEM in a kubeconfig) and binary data with a NUL */
        _cleanup_free_ char *w = NULL, *bin = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode("Zm9v\nYmFy\r\n", &w, &n), 0);
        assert_string_equal(w, "foobar");
        assert_int_equal(base64_decode("AGE=", &bin, &n), 0);
        assert_int_equal(n, 2);
        assert_true(bin[0] == 0 && bin[1] == 'a');
        /* what is refused leaves *ret alone */
        static const char *const bad[] = { "Zm9", "Z=9v", "Zm9v=", "Zg===", "Z===", "Zm9v!A==", "Zg==Zg==", "====" };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                char *out = (char *) 0x1;
                assert_int_equal(base64_decode(bad[i], &out, NULL), -EINVAL);
                assert_ptr_equal(out, (char *) 0x1);
        }
}

static void test_unix_sockaddr(void **state) {
        (void) state;
        char p[200];
        memset(p, 'a', sizeof p);
        p[0] = '/';
        p[UNIX_PATH_MAX_LEN] = '\0';
        struct sockaddr_un sa;
        socklen_t len = 0;
        KvErr e = {};
        assert_int_equal(UNIX_PATH_MAX_LEN, 107);
        assert_int_equal(unix_sockaddr("listen", p, &sa, &len, &e), 0);
        assert_string_equal(sa.sun_path, p);
        assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 108);
        p[UNIX_PATH_MAX_LEN] = 'b';
        p[UNIX_PATH_MAX_LEN + 1] = '\0';
        assert_int_equal(unix_sockaddr("listen", p, &sa, &len, &e), -ENAMETOOLONG);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "listen: unix socket path is 108 bytes, over the 107 that sun_path allows: '/aaa"));
        kverr_clear(&e);
        assert_int_equal(unix_sockaddr("listen", "", &sa, NULL, &e), -EINVAL);
        /* the protocol client says so too, instead of "not reachable" */
        kverr_clear(&e);
        json_t *res = NULL;
        assert_int_equal(proto_call_path(p, "ping", NULL, 100, &res, &e), -ENAMETOOLONG);
        assert_non_null(strstr(e.msg, "netd socket: unix socket path is 108 bytes"));
        assert_null(res);
}

/* Whose namespace a sandbox path names: the caller's own, PID 1's, or another (a child's fresh one). */
static void test_netns_owner(void **state) {
        (void) state;
        if (geteuid() != 0) {
                skip(); /* PID 1's namespace and unshare() need root */
                return;
        }
        int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), host = open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC);
        assert_true(own >= 0);
        assert_int_equal(netns_owner(own), NETNS_OWN);
        if (host >= 0)
                assert_int_equal(netns_owner(host), netns_same(own, host) ? NETNS_OWN : NETNS_HOST);
        else /* a sandbox whose PID 1 root may not inspect (this project's machines): that part is not seen here */
                print_message("PID 1's namespace is not readable here (%s): its case is not checked\n", strerror(errno));
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
                IGNORE_RESULT(write(p[1], &c, 1));
                pause();
                _exit(0);
        }
        char c = 0, path[64];
        assert_int_equal(read(p[0], &c, 1), 1);
        assert_int_equal(c, 'y');
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) pid);
        int other = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(other >= 0);
        assert_int_equal(netns_owner(other), NETNS_OTHER);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(other);
        close(own);
        if (host >= 0)
                close(host);
        close(p[0]);
        close(p[1]);
}

/* take: a burst, then one per 1/rate s, never more than the burst after a long quiet; nothing taken when refused */
static void test_token_bucket_take(void **state) {
        (void) state;
        KvTokenBucket b;
        kv_token_bucket_init(&b, 20, 4, 1000000);
        for (int i = 0; i < 4; i++)
                assert_true(kv_token_bucket_take(&b, 1000000));
        assert_false(kv_token_bucket_take(&b, 1000000));
        assert_false(kv_token_bucket_take(&b, 1049000)); /* 0.98 of a token: still refused, nothing borrowed */
        assert_true(kv_token_bucket_take(&b, 1051000));
        assert_false(kv_token_bucket_take(&b, 1051000));
        assert_false(kv_token_bucket_take(&b, 1000)); /* a clock going back refills nothing */
        for (int i = 0; i < 4; i++)
                assert_true(kv_token_bucket_take(&b, 60000000)); /* a minute later: the burst, not 1,200 */
        assert_false(kv_token_bucket_take(&b, 60000000));
        kv_token_bucket_init(&b, 0, 0, 0); /* no rate: no limit */
        for (int i = 0; i < 100; i++)
                assert_true(kv_token_bucket_take(&b, 0));
        assert_int_equal(kv_token_bucket_reserve(&b, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_token_bucket_take),
                cmocka_unit_test(test_unix_sockaddr),
                cmocka_unit_test(test_netns_owner),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_array_grow),
                cmocka_unit_test(test_read_append),
                cmocka_unit_test(test_addr),
                cmocka_unit_test(test_json_get),
                cmocka_unit_test(test_fileio),
                cmocka_unit_test(test_proto),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
