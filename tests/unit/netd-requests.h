/* SPDX-License-Identifier: Apache-2.0 */
/* Pieces of netd requests (JSON text) shared by the netd unit tests. */
#pragma once

#define BASE_NET "\"network\":{\"name\":\"vmnet\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}}"

#define SRIOV_NET                                                                                          \
        "\"network\":{\"name\":\"srnet\",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov_a\",\"vlan\":100," \
        "\"spoofchk\":false,\"trust\":true,\"ipam\":{\"ranges\":[[{\"subnet\":\"10.99.0.0/24\",\"gateway\":\"10.99.0.1\"}]]}}"
#define SRIOV_VM "\"vm\":{\"name\":\"vm1\",\"interface\":\"net1\"}"
