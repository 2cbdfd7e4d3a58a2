/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded API's TLS certificate (controller/tls.h): self-signed, ECDSA P-256, made with GnuTLS (the library
 * libmicrohttpd serves TLS with) and kept in the state dir. */
#include "controller/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/fileio.h"
#include "common/util.h"

#define CERT_DAYS 3650
#define CERT_MAX (64 * 1024)

/* Whether the certificate in pem is valid now and names ip (and loopback). */
static bool cert_fits(const char *pem, size_t len, const char *ip) {
        gnutls_x509_crt_t crt;
        if (gnutls_x509_crt_init(&crt) < 0)
                return false;
        gnutls_datum_t d = { .data = (unsigned char *) pem, .size = (unsigned) len };
        bool ok = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) >= 0;
        time_t now = time(NULL);
        ok = ok && gnutls_x509_crt_get_activation_time(crt) <= now &&
             gnutls_x509_crt_get_expiration_time(crt) > now + 86400;
        unsigned char a[16];
        int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
        ok = ok && inet_pton(fam, ip, a) == 1 &&
             gnutls_x509_crt_check_ip(crt, a, fam == AF_INET6 ? 16 : 4, 0) != 0;
        gnutls_x509_crt_deinit(crt);
        return ok;
}

static int add_ip(gnutls_x509_crt_t crt, const char *ip) {
        unsigned char a[16];
        int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(fam, ip, a) != 1)
                return -EINVAL;
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, a, fam == AF_INET6 ? 16 : 4,
                                                    GNUTLS_FSAN_APPEND) < 0
                       ? -EINVAL
                       : 0;
}

/* A new key and a self-signed certificate for ip (and 127.0.0.1, ::1, localhost), as PEM. */
static int make(const char *ip, char **ret_cert, char **ret_key, KvErr *e) {
        gnutls_x509_privkey_t key = NULL;
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t cd = {}, kd = {};
        int r = -EINVAL;
        unsigned char serial[16];
        if (getrandom(serial, sizeof serial, 0) != (ssize_t) sizeof serial)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "api: getrandom");
        serial[0] &= 0x7f; /* a positive serial */
        time_t now = time(NULL);
        static const char cn[] = "kvnet-controller embedded API";
        if (gnutls_x509_privkey_init(&key) < 0 ||
            gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                         0) < 0 ||
            gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_version(crt, 3) < 0 ||
            gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
            gnutls_x509_crt_set_activation_time(crt, now - 60) < 0 ||
            gnutls_x509_crt_set_expiration_time(crt, now + (time_t) CERT_DAYS * 86400) < 0 ||
            gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, sizeof cn - 1) < 0 ||
            gnutls_x509_crt_set_key(crt, key) < 0 ||
            /* its own trust anchor: the kubeconfig names it as the cluster's CA */
            gnutls_x509_crt_set_basic_constraints(crt, 1, 0) < 0 ||
            gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN) < 0 ||
            gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
            gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_APPEND) < 0 ||
            add_ip(crt, "127.0.0.1") < 0 || add_ip(crt, "::1") < 0 ||
            (strcmp(ip, "127.0.0.1") != 0 && strcmp(ip, "::1") != 0 && add_ip(crt, ip) < 0) ||
            gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
            gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cd) < 0 ||
            gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kd) < 0) {
                kverr_set(e, KV_ERR_INTERNAL, r, "api: cannot make a TLS certificate for %s", ip);
                goto out;
        }
        *ret_cert = strndup((const char *) cd.data, cd.size);
        *ret_key = strndup((const char *) kd.data, kd.size);
        if (!*ret_cert || !*ret_key) {
                free(*ret_cert);
                free(*ret_key);
                *ret_cert = *ret_key = NULL;
                r = kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "api: out of memory");
                goto out;
        }
        r = 0;
out:
        gnutls_free(cd.data);
        if (kd.data) {
                memset(kd.data, 0, kd.size);
                gnutls_free(kd.data);
        }
        if (crt)
                gnutls_x509_crt_deinit(crt);
        if (key)
                gnutls_x509_privkey_deinit(key);
        return r;
}

int ctl_tls_credentials(const char *dir, const char *ip, char **ret_cert, char **ret_key, KvErr *e) {
        char cpath[4096], kpath[4096];
        snprintf(cpath, sizeof cpath, "%s/api.crt", dir);
        snprintf(kpath, sizeof kpath, "%s/api.key", dir);
        _cleanup_free_ char *cert = NULL, *key = NULL;
        size_t clen = 0, klen = 0;
        if (read_file_max(cpath, CERT_MAX, &cert, &clen) >= 0 && read_file_max(kpath, CERT_MAX, &key, &klen) >= 0 &&
            cert_fits(cert, clen, ip)) {
                *ret_cert = TAKE_PTR(cert);
                *ret_key = TAKE_PTR(key);
                return 0;
        }
        free(cert);
        free(key);
        cert = key = NULL;
        int r = make(ip, &cert, &key, e);
        if (r < 0)
                return r;
        /* the key first: a certificate on disk always has its key */
        if ((r = write_file_atomic(kpath, key, strlen(key), true)) < 0 ||
            (r = write_file_atomic(cpath, cert, strlen(cert), true)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "api: cannot write the TLS certificate into '%s'", dir);
        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        return 0;
}
