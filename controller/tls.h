/* SPDX-License-Identifier: Apache-2.0 */
/* The embedded API serves HTTPS (kubectl and client-go send a bearer token over TLS only): a self-signed
 * certificate for its address, kept in the state dir (api.crt, api.key, 0600) so that a restart keeps the
 * kubeconfigs its clients hold; made anew when missing, expired within a day or not naming the address. */
#pragma once

#include "common/kverr.h"

/* The PEM certificate and key for ip (an IPv4 or IPv6 literal), from dir or made there. */
int ctl_tls_credentials(const char *dir, const char *ip, char **ret_cert, char **ret_key, KvErr *e) _wur_;
