/* SPDX-License-Identifier: Apache-2.0 */
/* kube/dl/curl.c, the on-demand libcurl of kvnet-multus: this test links no libcurl (Makefile), so libcurl must
 * not be mapped until kube_curl_load() loads it; then a client made through the table talks to a
 * one-answer HTTP server on loopback: every call, the variadic setopt and getinfo among them, reaches libcurl. */
#include <arpa/inet.h>
#include <link.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "kube/kube-priv.h"
#include "tests/unit/helpers.h"

static int find_curl(struct dl_phdr_info *info, size_t size, void *data) {
        (void) size;
        /* the library the loader opens; not libcurl-gnutls.so.4, which libvirt brings into a sanitizer build */
        if (info->dlpi_name && strstr(info->dlpi_name, "/libcurl.so.4"))
                *(bool *) data = true;
        return 0;
}

static bool curl_mapped(void) {
        bool found = false;
        dl_iterate_phdr(find_curl, &found);
        return found;
}

typedef struct Server {
        int fd;
        char request[4096];
} Server;

/* Answers one request with an empty JSON object, keeping what it was asked. */
static void *serve_one(void *arg) {
        Server *s = arg;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
                return NULL;
        size_t len = 0;
        while (len < sizeof s->request - 1 && !strstr(s->request, "\r\n\r\n")) {
                ssize_t n = read(c, s->request + len, sizeof s->request - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
                s->request[len] = 0;
        }
        const char *answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                             "Connection: close\r\n\r\n{\"kind\":\"x\"}";
        IGNORE_RESULT(write(c, answer, strlen(answer)));
        close(c);
        return NULL;
}

static void test_on_demand(void **state) {
        (void) state;
        assert_true(kube_curl_on_demand());
        assert_false(curl_mapped());
        KvErr e = {};
        assert_int_equal(kube_curl_load(&e), 0);
        assert_true(curl_mapped());
        assert_non_null(kube_curl->easy_init);
        assert_int_equal(kube_curl_load(&e), 0); /* the first answer again */
}

static void test_request_through_table(void **state) {
        (void) state;
        Server s = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
        assert_true(s.fd >= 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof a;
        assert_int_equal(bind(s.fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(listen(s.fd, 1), 0);
        assert_int_equal(getsockname(s.fd, (struct sockaddr *) &a, &alen), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, serve_one, &s), 0);

        char path[] = "/tmp/test-kube-curl-dl-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fprintf(f,
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                "clusters:\n- name: k\n  cluster: {server: 'http://127.0.0.1:%u'}\n"
                "users:\n- name: u\n  user: {token: t0k}\n",
                ntohs(a.sin_port));
        fclose(f);
        KvErr e = {};
        _cleanup_(kube_config_freep) KubeConfig *cfg = NULL;
        assert_int_equal(kube_config_load(path, &cfg, &e), 0);
        unlink(path);
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        assert_int_equal(kube_client_new(cfg, NULL, &c, &e), 0);
        json_t *o = NULL;
        KubeRequest req = { .verb = KUBE_GET, .ref = { "v1", "pods", "default", "p1" } };
        assert_int_equal(kube_request_sync(c, &req, &o, &e), 0);
        assert_string_equal(json_string_value(json_object_get(o, "kind")), "x");
        json_decref(o);
        pthread_join(t, NULL);
        close(s.fd);
        assert_non_null(strstr(s.request, "GET /api/v1/namespaces/default/pods/p1 HTTP/1.1"));
        assert_non_null(strstr(s.request, "Authorization: Bearer t0k"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_on_demand),
                cmocka_unit_test(test_request_through_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
