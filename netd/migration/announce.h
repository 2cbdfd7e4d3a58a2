/* SPDX-License-Identifier: Apache-2.0 */
/* Gratuitous ARP / unsolicited neighbour advertisement (netd/migration/announce.c). */
#pragma once

#include <netinet/in.h>

#include "common/addr.h"
#include "common/kverr.h"

/* Frame builders (for tests): return the frame length, 0 if n is too small. */
size_t announce_build_garp(uint8_t *f, size_t n, const uint8_t mac[6], const struct in_addr *a);
size_t announce_build_una(uint8_t *f, size_t n, const uint8_t mac[6], const struct in6_addr *a);

/* Sends 'rounds' times one gratuitous ARP per IPv4 address and one unsolicited NA per IPv6 address,
 * source MAC 'mac', out of 'ifname' in the network namespace nsfd (-1 = netd's own), back to back.
 * Returns the number of frames sent. Closing the packet socket waits for an RCU grace period
 * (~10 ms): with ret_sock the socket is handed to the caller to close off the event loop
 * (reaper_queue_close), else it is closed here. */
int announce_send(int nsfd, const char *ifname, const uint8_t mac[6], const KvPrefix *addrs, size_t n_addrs,
                  unsigned rounds, int *ret_sock, KvErr *e) _wur_;
