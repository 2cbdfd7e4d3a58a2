/* SPDX-License-Identifier: Apache-2.0 */
/* Failed requests as errors: the HTTP status as errno, the API's Status (message, reason) as the KvErr. */
#include "kube/kube-priv.h"

int kube_http_errno(long http, const char *reason) {
        if (http >= 200 && http < 300)
                return 0;
        switch (http) {
        case 400:
        case 422:
                return -EINVAL;
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 405:
                return -EOPNOTSUPP;
        case 409:
                return streq_ptr(reason, "AlreadyExists") ? -EEXIST : -EBUSY;
        case 410:
                return -ESTALE;
        case 413:
                return -EFBIG;
        case 415:
                return -EPROTONOSUPPORT;
        case 429:
                return -EAGAIN;
        default:
                return -EIO;
        }
}

static int http_kverr_code(int r) {
        switch (r) {
        case -EINVAL:
                return KV_ERR_INVALID_CONFIG;
        case -EEXIST:
                return KV_ERR_EXISTS;
        case -EBUSY:
        case -EAGAIN:
        case -EIO:
                return KV_ERR_TRY_AGAIN;
        default:
                return KV_ERR_IO;
        }
}

int kube_status_error(long http, const char *body, size_t len, const char *what, KvErr *e) {
        json_error_t jerr;
        json_t *st = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
        const char *reason = json_string_value(json_object_get(st, "reason"));
        const char *message = json_string_value(json_object_get(st, "message"));
        int r = kube_http_errno(http, reason);
        if (r == 0)
                r = -EIO;
        if (message)
                kverr_set(e, http_kverr_code(r), r, "%s: %s (%ld %s)", what, message, http, reason ? reason : "");
        else
                kverr_set(e, http_kverr_code(r), r, "%s: HTTP %ld%s%.*s", what, http, len ? ": " : "",
                          (int) (len > 200 ? 200 : len), body ? body : "");
        if (e && reason)
                snprintf(e->details, sizeof e->details, "%s", reason);
        json_decref(st);
        return r;
}

int kube_curl_error(CURLcode cc, const char *errbuf, const char *what, KvErr *e) {
        int r;
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                r = -ECONNREFUSED;
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
                r = -EHOSTUNREACH;
                break;
        case CURLE_OPERATION_TIMEDOUT:
                r = -ETIMEDOUT;
                break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CONNECT_ERROR:
                r = -EKEYREJECTED;
                break;
        case CURLE_OUT_OF_MEMORY:
                r = -ENOMEM;
                break;
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                r = -ECONNRESET;
                break;
        default:
                r = -EIO;
        }
        return kverr_set(e, r == -EKEYREJECTED ? KV_ERR_INVALID_CONFIG : KV_ERR_TRY_AGAIN, r, "%s: %s", what,
                         errbuf && *errbuf ? errbuf : curl_easy_strerror(cc));
}
