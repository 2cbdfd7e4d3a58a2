/* SPDX-License-Identifier: Apache-2.0 */
/* tc (clsact) attachment of kvnet's BPF programs (netd/link/vlan.c, netd/migration/migredir.c), through libbpf. Each user
 * owns one handle/priority pair per direction; everything acts on the caller's network namespace. */
#pragma once

#include <stdint.h>

#include <bpf/libbpf.h>

/* Routes libbpf's messages to kvnet's log at debug level (idempotent). */
void tcbpf_log_setup(void);
/* Creates clsact if needed and attaches (or atomically replaces) prog_fd at handle/prio. */
int tcbpf_attach(int ifindex, enum bpf_tc_attach_point where, int prog_fd, uint32_t handle, uint32_t prio);
/* Removes the filter at handle/prio; 0 also when there was none. clsact stays (others may use it). */
int tcbpf_detach(int ifindex, enum bpf_tc_attach_point where, uint32_t handle, uint32_t prio);
/* 1 and the program's name (up to 15 characters) if a filter sits at handle/prio, 0 if none, < 0 on error. */
int tcbpf_query(int ifindex, enum bpf_tc_attach_point where, uint32_t handle, uint32_t prio, char name[16]);
