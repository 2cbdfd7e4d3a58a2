/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/link/tcbpf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "common/log.h"
#include "common/util.h"

/* libbpf's own messages at debug level: its "exclusivity flag" notice for an existing clsact qdisc is normal. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap) {
        if (level == LIBBPF_DEBUG)
                return 0;
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_debug("libbpf: %s", buf);
        return 0;
}

void tcbpf_log_setup(void) {
        static bool done;
        if (!done)
                libbpf_set_print(libbpf_log);
        done = true;
}

int tcbpf_attach(int ifindex, enum bpf_tc_attach_point where, int prog_fd, uint32_t handle, uint32_t prio) {
        DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);
        int r = bpf_tc_hook_create(&hook);
        if (r < 0 && r != -EEXIST)
                return r;
        hook.attach_point = where;
        DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = prio, .prog_fd = prog_fd,
                            .flags = BPF_TC_F_REPLACE);
        return bpf_tc_attach(&hook, &opts);
}

int tcbpf_detach(int ifindex, enum bpf_tc_attach_point where, uint32_t handle, uint32_t prio) {
        DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
        DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = prio);
        int r = bpf_tc_detach(&hook, &opts);
        return r == -ENOENT || r == -EINVAL ? 0 : r;
}

int tcbpf_query(int ifindex, enum bpf_tc_attach_point where, uint32_t handle, uint32_t prio, char name[16]) {
        DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
        DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = prio);
        int r = bpf_tc_query(&hook, &opts);
        if (r == -ENOENT || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        struct bpf_prog_info info = {};
        __u32 len = sizeof info;
        _cleanup_close_ int fd = bpf_prog_get_fd_by_id(opts.prog_id);
        if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
                return negative_errno();
        snprintf(name, 16, "%s", info.name);
        return 1;
}
