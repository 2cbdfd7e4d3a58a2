/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl loaded on demand (dlopen) for a short-lived program that often does not need it: Debian's libcurl brings
 * ~30 libraries (TLS, LDAP, Kerberos, SSH, RTMP, ...) whose loading and initialisation cost ~5 ms of CPU at every
 * exec, more than a whole delegate's ADD. kvnet-multus links this file instead of libcurl; everything else links
 * libcurl (kube/curl-api.c). Not part of libkvkube.a. */
#define KUBE_CURL_API_IMPL
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "kube/curl-api.h"

/* libcurl's soname since 7.16 (2006); the library the build compiled against (libcurl4-*-dev). */
#define LIBCURL_SONAME "libcurl.so.4"

static KubeCurlApi loaded;
const KubeCurlApi *kube_curl = &loaded;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static bool sym(void *lib, const char *name, void *ret) {
        void *f = dlsym(lib, name);
        if (!f) {
                const char *why = dlerror();
                snprintf(load_error, sizeof load_error, "%s has no '%s': %s", LIBCURL_SONAME, name, why ? why : "?");
                return false;
        }
        memcpy(ret, &f, sizeof f); /* object pointer to function pointer, as POSIX allows for dlsym */
        return true;
}

static void load(void) {
        void *lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                const char *why = dlerror();
                snprintf(load_error, sizeof load_error, "cannot load %s: %s", LIBCURL_SONAME, why ? why : "?");
                return;
        }
        KubeCurlApi t = {};
#define S(field, name) sym(lib, name, &t.field)
        if (!S(global_init, "curl_global_init") || !S(global_cleanup, "curl_global_cleanup") ||
            !S(easy_init, "curl_easy_init") || !S(easy_cleanup, "curl_easy_cleanup") ||
            !S(easy_setopt, "curl_easy_setopt") || !S(easy_getinfo, "curl_easy_getinfo") ||
            !S(easy_strerror, "curl_easy_strerror") || !S(slist_append, "curl_slist_append") ||
            !S(slist_free_all, "curl_slist_free_all") || !S(multi_init, "curl_multi_init") ||
            !S(multi_cleanup, "curl_multi_cleanup") || !S(multi_add_handle, "curl_multi_add_handle") ||
            !S(multi_remove_handle, "curl_multi_remove_handle") || !S(multi_assign, "curl_multi_assign") ||
            !S(multi_setopt, "curl_multi_setopt") || !S(multi_socket_action, "curl_multi_socket_action") ||
            !S(multi_info_read, "curl_multi_info_read") || !S(multi_strerror, "curl_multi_strerror") ||
            !S(multi_perform, "curl_multi_perform") || !S(multi_poll, "curl_multi_poll")) {
                dlclose(lib);
                return;
        }
#undef S
        /* libcurl's global state (its TLS library's, reading openssl.cnf among others) set up here, once;
         * kube_client_new()'s own curl_global_init() then only counts. Never undone: the library stays loaded
         * until exit. */
        if (t.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(load_error, sizeof load_error, "%s: curl_global_init failed", LIBCURL_SONAME);
                return;
        }
        loaded = t;
}

int kube_curl_load(KvErr *e) {
        int r = pthread_once(&once, load);
        if (r != 0)
                return kverr_set(e, KV_ERR_INTERNAL, -r, "kube: loading %s: %s", LIBCURL_SONAME, strerror(r));
        if (!loaded.easy_init)
                return kverr_set(e, KV_ERR_INTERNAL, -ELIBACC, "kube: %s", load_error);
        return 0;
}

bool kube_curl_on_demand(void) {
        return true;
}
