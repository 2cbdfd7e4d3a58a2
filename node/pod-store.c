/* SPDX-License-Identifier: Apache-2.0 */
/* The pod record: everything a restarted runtime needs to find a pod's parts again (sandbox by name and
 * device/inode, CNI network and container ID, libvirtd and launcher by pid and start time), one JSON
 * object in <state_dir>/pods/<uid>/pod.json, written atomically. Parsed and checked in one place. */
#include <ftw.h>
#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "node/pod-priv.h"

/* ---------------------------------------------------------------- names and tables */

static const char *const node_pod_binding_table[_NODE_POD_BINDING_MAX] = {
        [NODE_POD_BINDING_BRIDGE] = "bridge",
        [NODE_POD_BINDING_MASQUERADE] = "masquerade",
};

NODE_DEFINE_STRING_TABLE(node_pod_binding, NodePodBinding)

static const char *const node_pod_state_table[_NODE_POD_STATE_MAX] = {
        [NODE_POD_STARTING] = "starting",
        [NODE_POD_RUNNING] = "running",
        [NODE_POD_STOPPING] = "stopping",
};

NODE_DEFINE_STRING_TABLE(node_pod_state, NodePodState)

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool node_pod_uid_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > NODE_POD_UID_MAX || !lower_alnum(s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!lower_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool ifname_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 15 || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '/' || s[i] == ':' || s[i] == ';' || s[i] <= ' ' || s[i] == 0x7f)
                        return false;
        return true;
}

static bool sandbox_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > NODE_SANDBOX_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!lower_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

/* ---------------------------------------------------------------- the spec */

#define SPEC_ERR(e, fmt, ...) node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "pod: " fmt, __VA_ARGS__)

int node_pod_spec_check(const NodePodSpec *s, NodeErr *e) {
        if (!kv_dns_label_valid(s->namespace_))
                return SPEC_ERR(e, "'namespace' must be a DNS label ([a-z0-9-], 1..63), got '%.80s'",
                                s->namespace_ ?: "(null)");
        if (!kv_dns_subdomain_valid(s->name))
                return SPEC_ERR(e, "'name' must be a DNS subdomain (at most 253), got '%.80s'", s->name ?: "(null)");
        if (!node_pod_uid_valid(s->uid))
                return SPEC_ERR(e, "'uid' must be [a-z0-9-], 1..%d characters, got '%.80s'", NODE_POD_UID_MAX,
                                s->uid ?: "(null)");
        if (!kv_dns_label_valid(s->vm_namespace))
                return SPEC_ERR(e, "'vmNamespace' must be a DNS label, got '%.80s'", s->vm_namespace ?: "(null)");
        if (!kv_dns_label_valid(s->vm_name))
                return SPEC_ERR(e, "'vmName' must be a DNS label, got '%.80s'", s->vm_name ?: "(null)");
        if (s->vm_interface && !kv_dns_label_valid(s->vm_interface))
                return SPEC_ERR(e, "'vmInterface' must be a DNS label, got '%.80s'", s->vm_interface);
        if (s->ifname && !ifname_valid(s->ifname))
                return SPEC_ERR(e, "'ifname' must be an interface name (1..15, no '/', ':', ';' or space), got '%.80s'",
                                s->ifname);
        if (!node_pod_binding_to_string(s->binding))
                return SPEC_ERR(e, "'binding' must be bridge or masquerade, got %d", (int) s->binding);
        if (s->n_nics > NODE_POD_NICS_MAX || (s->n_nics && !s->nics))
                return SPEC_ERR(e, "'nics' must hold at most %d NICs, got %zu", NODE_POD_NICS_MAX, s->n_nics);
        for (size_t i = 0; i < s->n_nics; i++) {
                const NodePodNic *n = &s->nics[i];
                if (!kv_dns_label_valid(n->vm_interface))
                        return SPEC_ERR(e, "'nics[%zu].vmInterface' must be a DNS label, got '%.80s'", i,
                                        n->vm_interface ?: "(null)");
                if (!ifname_valid(n->ifname))
                        return SPEC_ERR(e, "'nics[%zu].ifname' must be an interface name (1..15, no '/', ':', ';' or "
                                        "space), got '%.80s'", i, n->ifname ?: "(null)");
                if (streq(n->vm_interface, s->vm_interface ?: "default") || streq(n->ifname, s->ifname ?: "tap0"))
                        return SPEC_ERR(e, "'nics[%zu]' (%s, %s) is the pod network's interface", i, n->vm_interface,
                                        n->ifname);
                for (size_t j = 0; j < i; j++)
                        if (streq(n->vm_interface, s->nics[j].vm_interface) || streq(n->ifname, s->nics[j].ifname))
                                return SPEC_ERR(e, "'nics[%zu]' (%s, %s) repeats nics[%zu]'s interface or ifname", i,
                                                n->vm_interface, n->ifname, j);
        }
        if (s->grace_seconds > 86400)
                return SPEC_ERR(e, "'graceSeconds' must be at most 86400, got %d", s->grace_seconds);
        if (s->incoming_timeout_s > 86400)
                return SPEC_ERR(e, "'incomingTimeoutSeconds' must be at most 86400, got %u", s->incoming_timeout_s);
        if (!s->vmi_json || !*s->vmi_json)
                return SPEC_ERR(e, "'vmi' is %s", "empty");
        json_error_t jerr;
        _cleanup_json_ json_t *v = json_loads(s->vmi_json, 0, &jerr);
        if (!json_is_object(v))
                return SPEC_ERR(e, "'vmi' must be a JSON object: %s (line %d)", v ? "not an object" : jerr.text,
                                jerr.line);
        return 0;
}

/* ---------------------------------------------------------------- the object */

NodePod *node_pod_free(NodePod *p) {
        if (!p)
                return NULL;
        free(p->namespace_);
        free(p->name);
        free(p->uid);
        free(p->vm_namespace);
        free(p->vm_name);
        free(p->vm_interface);
        free(p->ifname);
        for (size_t i = 0; i < p->n_nics; i++) {
                free((char *) p->nics[i].vm_interface);
                free((char *) p->nics[i].ifname);
        }
        free(p->nics);
        free(p->node_name);
        free(p->network);
        free(p->cni_result);
        free(p->libvirt_uri);
        free(p->dir);
        free(p->sandbox_path);
        free(p->launcher_socket);
        free(p->status_file);
        free(p->serial_log);
        node_cni_result_free(p->result);
        free(p);
        return NULL;
}

void node_pods_free(NodePod **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                node_pod_free(v[i]);
        free(v);
}

static int dup_to(char **dst, const char *s) {
        char *d = strdup(s ? s : "");
        if (!d)
                return -ENOMEM;
        free(*dst);
        *dst = d;
        return 0;
}

/* The first address of the family in the result, without its prefix length. */
static void result_ip(const NodeCniResult *r, bool v6, char *buf, size_t n) {
        buf[0] = '\0';
        for (size_t i = 0; r && i < r->n_ips; i++) {
                const char *a = r->ips[i].address;
                if (!!strchr(a, ':') != v6)
                        continue;
                size_t len = strcspn(a, "/");
                snprintf(buf, n, "%.*s", (int) len, a);
                return;
        }
}

/* The MAC of the interface ifname inside the sandbox, else of any sandbox interface. */
static void result_mac(const NodeCniResult *r, const char *ifname, char *buf, size_t n) {
        buf[0] = '\0';
        for (int pass = 0; r && pass < 2; pass++)
                for (size_t i = 0; i < r->n_interfaces; i++) {
                        const NodeCniInterface *f = &r->interfaces[i];
                        if (!*f->sandbox || !*f->mac || (pass == 0 && !streq(f->name, ifname)))
                                continue;
                        snprintf(buf, n, "%s", f->mac);
                        return;
                }
}

int node_pod_derive(NodePod *p, const char *state_dir, NodeErr *e) {
        free(p->dir);
        free(p->launcher_socket);
        free(p->status_file);
        free(p->serial_log);
        free(p->sandbox_path);
        p->dir = p->launcher_socket = p->status_file = p->serial_log = p->sandbox_path = NULL;
        if (asprintf(&p->dir, "%s/pods/%s", state_dir, p->uid) < 0) {
                p->dir = NULL;
                return -ENOMEM;
        }
        if (asprintf(&p->launcher_socket, "%s/launcher.sock", p->dir) < 0)
                p->launcher_socket = NULL;
        if (asprintf(&p->status_file, "%s/status.json", p->dir) < 0)
                p->status_file = NULL;
        if (asprintf(&p->serial_log, "%s/serial.log", p->dir) < 0)
                p->serial_log = NULL;
        if (p->sandbox_name[0] ? asprintf(&p->sandbox_path, "%s/%s", NODE_NETNS_DIR, p->sandbox_name) < 0
                               : !(p->sandbox_path = strdup("")))
                p->sandbox_path = NULL;
        if (!p->launcher_socket || !p->status_file || !p->serial_log || !p->sandbox_path)
                return -ENOMEM;
        p->result = node_cni_result_free(p->result);
        p->ip4[0] = p->ip6[0] = p->mac[0] = '\0';
        if (p->cni_result) {
                int r = node_cni_result_parse(p->cni_result, strlen(p->cni_result), &p->result, e);
                if (r < 0)
                        return r;
                result_ip(p->result, false, p->ip4, sizeof p->ip4);
                result_ip(p->result, true, p->ip6, sizeof p->ip6);
                result_mac(p->result, p->ifname, p->mac, sizeof p->mac);
        }
        return 0;
}

int node_pod_new(const NodePodSpec *s, const char *node_name, const char *state_dir, NodePod **ret) {
        _cleanup_(node_pod_freep) NodePod *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if (dup_to(&p->namespace_, s->namespace_) < 0 || dup_to(&p->name, s->name) < 0 || dup_to(&p->uid, s->uid) < 0 ||
            dup_to(&p->vm_namespace, s->vm_namespace) < 0 || dup_to(&p->vm_name, s->vm_name) < 0 ||
            dup_to(&p->vm_interface, s->vm_interface ?: "default") < 0 || dup_to(&p->ifname, s->ifname ?: "tap0") < 0 ||
            dup_to(&p->node_name, node_name) < 0 || dup_to(&p->libvirt_uri, "") < 0)
                return -ENOMEM;
        p->binding = s->binding;
        if (s->n_nics) {
                p->nics = calloc(s->n_nics, sizeof *p->nics);
                if (!p->nics)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_nics; i++, p->n_nics++)
                        if (!(p->nics[i].vm_interface = strdup(s->nics[i].vm_interface)) ||
                            !(p->nics[i].ifname = strdup(s->nics[i].ifname))) {
                                free((char *) p->nics[i].vm_interface);
                                return -ENOMEM;
                        } else
                                p->nics[i].sriov = s->nics[i].sriov;
        }
        p->incoming = s->incoming;
        p->incoming_timeout_s = s->incoming_timeout_s;
        p->grace_seconds = s->grace_seconds < 0 ? -1 : s->grace_seconds;
        p->state = NODE_POD_STARTING;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p->created_ms = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int r = node_pod_derive(p, state_dir, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---------------------------------------------------------------- encode */

static json_t *proc_json(const NodeProc *p) {
        if (p->pid <= 0)
                return json_null();
        return json_pack("{s:i, s:I}", "pid", (int) p->pid, "startTime", (json_int_t) p->start_time);
}

int node_pod_record_encode(const NodePod *p, char **ret) {
        json_t *result = json_null();
        if (p->cni_result) {
                json_error_t jerr;
                result = json_loads(p->cni_result, 0, &jerr);
                if (!result)
                        return -EINVAL;
        }
        _cleanup_json_ json_t *o = json_pack(
                "{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:I,"
                " s:{s:s, s:s, s:s},"
                " s:s, s:b, s:I, s:i,"
                " s:o,"
                " s:{s:s, s:s, s:o},"
                " s:{s:o, s:s}, s:o}",
                "kind", NODE_POD_RECORD_KIND, "version", NODE_POD_RECORD_VERSION, "namespace", p->namespace_, "name",
                p->name, "uid", p->uid, "node", p->node_name, "state", node_pod_state_to_string(p->state), "createdMs",
                (json_int_t) p->created_ms, "vm", "namespace", p->vm_namespace, "name", p->vm_name, "interface",
                p->vm_interface, "binding", node_pod_binding_to_string(p->binding), "incoming", p->incoming,
                "incomingTimeoutSeconds", (json_int_t) p->incoming_timeout_s, "graceSeconds", p->grace_seconds,
                "sandbox",
                p->sandbox_name[0] ? json_pack("{s:s, s:I, s:I}", "name", p->sandbox_name, "dev",
                                               (json_int_t) p->sandbox_dev, "ino", (json_int_t) p->sandbox_ino)
                                   : json_null(),
                "cni", "network", p->network ? p->network : "", "ifname", p->ifname, "result", result, "libvirtd", "proc",
                proc_json(&p->libvirtd), "uri", p->libvirt_uri ? p->libvirt_uri : "", "launcher",
                proc_json(&p->launcher));
        if (!o)
                return -ENOMEM;
        if (p->n_nics) { /* only when there are some: records without them read as before */
                json_t *nics = json_array();
                if (!nics || json_object_set_new(o, "nics", nics) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < p->n_nics; i++)
                        if (json_array_append_new(nics, json_pack("{s:s, s:s, s:b}", "interface", p->nics[i].vm_interface,
                                                                  "ifname", p->nics[i].ifname, "sriov",
                                                                  p->nics[i].sriov)) < 0)
                                return -ENOMEM;
        }
        char *s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- decode */

#define REC_ERR(e, what, fmt, ...) \
        node_err_set(e, NODE_ERR_RECORD, NULL, NULL, -EBADMSG, "%s: " fmt, what, __VA_ARGS__)

static int get_str(json_t *o, const char *ctx, const char *key, const char *what, const char **ret, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        if (!json_is_string(v))
                return REC_ERR(e, what, "'%s%s' must be a string, got %s", ctx, key, v ? json_type_name(v) : "nothing");
        *ret = json_string_value(v);
        return 0;
}

static int get_int(json_t *o, const char *ctx, const char *key, const char *what, long long min, long long max,
                   long long *ret, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return REC_ERR(e, what, "'%s%s' must be an integer %lld..%lld", ctx, key, min, max);
        *ret = json_integer_value(v);
        return 0;
}

static int get_proc(json_t *o, const char *ctx, const char *what, NodeProc *ret, NodeErr *e) {
        if (json_is_null(o)) {
                *ret = (NodeProc) { 0 };
                return 0;
        }
        if (!json_is_object(o))
                return REC_ERR(e, what, "'%s' must be an object or null", ctx);
        char c[48];
        snprintf(c, sizeof c, "%s.", ctx);
        long long pid, st;
        int r;
        if ((r = get_int(o, c, "pid", what, 1, INT32_MAX, &pid, e)) < 0 ||
            (r = get_int(o, c, "startTime", what, 0, INT64_MAX, &st, e)) < 0)
                return r;
        *ret = (NodeProc) { .pid = (pid_t) pid, .start_time = (unsigned long long) st };
        return 0;
}

int node_pod_record_decode(const char *text, size_t len, const char *what, const char *state_dir, NodePod **ret,
                           NodeErr *e) {
        json_error_t jerr;
        if (len > NODE_POD_RECORD_MAX)
                return REC_ERR(e, what, "larger than %u bytes", NODE_POD_RECORD_MAX);
        _cleanup_json_ json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(o))
                return REC_ERR(e, what, "not a JSON object: %s", o ? "wrong type" : jerr.text);
        const char *kind, *ns, *name, *uid, *node, *state, *vns, *vname, *viface, *binding, *network, *ifname, *uri;
        long long version, created, itimeout, grace;
        bool incoming;
        json_t *vm = json_object_get(o, "vm"), *cni = json_object_get(o, "cni"), *lv = json_object_get(o, "libvirtd"),
               *inc = json_object_get(o, "incoming");
        int r;
        if ((r = get_str(o, "", "kind", what, &kind, e)) < 0)
                return r;
        if (!streq(kind, NODE_POD_RECORD_KIND))
                return REC_ERR(e, what, "'kind' must be %s, got '%.40s'", NODE_POD_RECORD_KIND, kind);
        if ((r = get_int(o, "", "version", what, 1, 1000, &version, e)) < 0)
                return r;
        if (version != NODE_POD_RECORD_VERSION)
                return REC_ERR(e, what, "'version' %lld is not supported (this runtime writes %d)", version,
                               NODE_POD_RECORD_VERSION);
        if (!json_is_object(vm))
                return REC_ERR(e, what, "'vm' must be an object%s", "");
        if (!json_is_object(cni))
                return REC_ERR(e, what, "'cni' must be an object%s", "");
        if (!json_is_object(lv))
                return REC_ERR(e, what, "'libvirtd' must be an object%s", "");
        if (!json_is_boolean(inc))
                return REC_ERR(e, what, "'incoming' must be a boolean%s", "");
        incoming = json_is_true(inc);
        if ((r = get_str(o, "", "namespace", what, &ns, e)) < 0 || (r = get_str(o, "", "name", what, &name, e)) < 0 ||
            (r = get_str(o, "", "uid", what, &uid, e)) < 0 || (r = get_str(o, "", "node", what, &node, e)) < 0 ||
            (r = get_str(o, "", "state", what, &state, e)) < 0 ||
            (r = get_int(o, "", "createdMs", what, 0, INT64_MAX, &created, e)) < 0 ||
            (r = get_str(vm, "vm.", "namespace", what, &vns, e)) < 0 ||
            (r = get_str(vm, "vm.", "name", what, &vname, e)) < 0 ||
            (r = get_str(vm, "vm.", "interface", what, &viface, e)) < 0 ||
            (r = get_str(o, "", "binding", what, &binding, e)) < 0 ||
            (r = get_int(o, "", "incomingTimeoutSeconds", what, 0, 86400, &itimeout, e)) < 0 ||
            (r = get_int(o, "", "graceSeconds", what, -1, 86400, &grace, e)) < 0 ||
            (r = get_str(cni, "cni.", "network", what, &network, e)) < 0 ||
            (r = get_str(cni, "cni.", "ifname", what, &ifname, e)) < 0 ||
            (r = get_str(lv, "libvirtd.", "uri", what, &uri, e)) < 0)
                return r;

        json_t *jnics = json_object_get(o, "nics");
        NodePodNic nics[NODE_POD_NICS_MAX];
        size_t n_nics = 0;
        if (jnics && (!json_is_array(jnics) || json_array_size(jnics) > NODE_POD_NICS_MAX))
                return REC_ERR(e, what, "'nics' must be an array of at most %d", NODE_POD_NICS_MAX);
        for (size_t i = 0; jnics && i < json_array_size(jnics); i++, n_nics++) {
                json_t *n = json_array_get(jnics, i);
                if (!json_is_object(n))
                        return REC_ERR(e, what, "'nics[%zu]' must be an object", i);
                if ((r = get_str(n, "nics[].", "interface", what, &nics[i].vm_interface, e)) < 0 ||
                    (r = get_str(n, "nics[].", "ifname", what, &nics[i].ifname, e)) < 0)
                        return r;
                json_t *sr = json_object_get(n, "sriov"); /* records before SR-IOV NICs have none */
                if (sr && !json_is_boolean(sr))
                        return REC_ERR(e, what, "'nics[%zu].sriov' must be a boolean", i);
                nics[i].sriov = json_is_true(sr);
        }

        /* the same checks as a spec: a record is input too */
        NodePodSpec s = {
                .nics = nics, .n_nics = n_nics,
                .namespace_ = ns, .name = name, .uid = uid, .vmi_json = "{}", .vm_namespace = vns, .vm_name = vname,
                .vm_interface = viface, .ifname = ifname, .binding = node_pod_binding_from_string(binding),
                .incoming = incoming, .incoming_timeout_s = (unsigned) itimeout, .grace_seconds = (int) grace,
        };
        if (s.binding < 0)
                return REC_ERR(e, what, "'binding' must be bridge or masquerade, got '%.40s'", binding);
        NodeErr se = { 0 };
        if (node_pod_spec_check(&s, &se) < 0) {
                r = REC_ERR(e, what, "%s", se.msg);
                node_err_done(&se);
                return r;
        }
        NodePodState st = node_pod_state_from_string(state);
        if (st < 0)
                return REC_ERR(e, what, "'state' must be starting, running or stopping, got '%.40s'", state);
        if (network[0] && !node_cni_type_valid(network)) /* the network name is part of the cache file name */
                return REC_ERR(e, what, "'cni.network' must be a network name, got '%.80s'", network);

        _cleanup_(node_pod_freep) NodePod *p = NULL;
        if ((r = node_pod_new(&s, node, state_dir, &p)) < 0)
                return r;
        p->state = st;
        p->created_ms = created;
        if (network[0] && !(p->network = strdup(network)))
                return -ENOMEM;
        if (dup_to(&p->libvirt_uri, uri) < 0)
                return -ENOMEM;

        json_t *sb = json_object_get(o, "sandbox");
        if (json_is_object(sb)) {
                const char *sname;
                long long dev, ino;
                if ((r = get_str(sb, "sandbox.", "name", what, &sname, e)) < 0 ||
                    (r = get_int(sb, "sandbox.", "dev", what, 0, INT64_MAX, &dev, e)) < 0 ||
                    (r = get_int(sb, "sandbox.", "ino", what, 0, INT64_MAX, &ino, e)) < 0)
                        return r;
                if (!sandbox_name_valid(sname))
                        return REC_ERR(e, what, "'sandbox.name' must be [a-z0-9-], 1..%d, got '%.80s'",
                                       NODE_SANDBOX_NAME_MAX, sname);
                snprintf(p->sandbox_name, sizeof p->sandbox_name, "%s", sname);
                p->sandbox_dev = (unsigned long long) dev;
                p->sandbox_ino = (unsigned long long) ino;
        } else if (!json_is_null(sb))
                return REC_ERR(e, what, "'sandbox' must be an object or null%s", "");

        json_t *res = json_object_get(cni, "result");
        if (json_is_object(res)) {
                if (!(p->cni_result = json_dump_compact(res)))
                        return -ENOMEM;
        } else if (!json_is_null(res))
                return REC_ERR(e, what, "'cni.result' must be an object or null%s", "");
        if ((r = get_proc(json_object_get(lv, "proc"), "libvirtd.proc", what, &p->libvirtd, e)) < 0 ||
            (r = get_proc(json_object_get(o, "launcher"), "launcher", what, &p->launcher, e)) < 0)
                return r;
        if ((r = node_pod_derive(p, state_dir, e)) < 0)
                return r == -ENOMEM ? r : REC_ERR(e, what, "'cni.result' is not a CNI result%s", "");
        *ret = TAKE_PTR(p);
        return 0;
}

int node_pod_nic_check(const NodePod *p, const NodePodNic *n, NodeErr *e) {
        if (!kv_dns_label_valid(n->vm_interface))
                return SPEC_ERR(e, "NIC: 'vmInterface' must be a DNS label, got '%.80s'", n->vm_interface ?: "(null)");
        if (!ifname_valid(n->ifname))
                return SPEC_ERR(e, "NIC %s: 'ifname' must be an interface name (1..15, no '/', ':', ';' or space), got '%.80s'",
                                n->vm_interface, n->ifname ?: "(null)");
        if (streq(n->vm_interface, p->vm_interface ?: "default") || streq(n->ifname, p->ifname ?: "tap0"))
                return SPEC_ERR(e, "NIC (%s, %s) is the pod network's interface", n->vm_interface, n->ifname);
        for (size_t j = 0; j < p->n_nics; j++)
                if (streq(n->vm_interface, p->nics[j].vm_interface) || streq(n->ifname, p->nics[j].ifname))
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EEXIST,
                                            "pod: NIC (%s, %s) repeats the attached NIC (%s, %s)", n->vm_interface,
                                            n->ifname, p->nics[j].vm_interface, p->nics[j].ifname);
        if (p->n_nics >= NODE_POD_NICS_MAX)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -E2BIG, "pod: it has %d NICs already, the most it can",
                                    NODE_POD_NICS_MAX);
        return 0;
}

int node_pod_nic_append(NodePod *p, const NodePodNic *n) {
        NodePodNic *v = realloc(p->nics, (p->n_nics + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        p->nics = v;
        char *a = strdup(n->vm_interface), *b = strdup(n->ifname);
        if (!a || !b) {
                free(a);
                free(b);
                return -ENOMEM;
        }
        v[p->n_nics++] = (NodePodNic){ a, b, n->sriov };
        return 0;
}

void node_pod_nic_remove(NodePod *p, size_t i) {
        if (i >= p->n_nics)
                return;
        free((char *) p->nics[i].vm_interface);
        free((char *) p->nics[i].ifname);
        memmove(p->nics + i, p->nics + i + 1, (p->n_nics - i - 1) * sizeof *p->nics);
        p->n_nics--;
}

/* ---------------------------------------------------------------- files */

int node_pod_record_write(const NodePod *p, NodeErr *e) {
        _cleanup_free_ char *s = NULL, *path = NULL;
        int r = node_pod_record_encode(p, &s);
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "pod %s/%s: encoding its record", p->namespace_,
                                    p->name);
        if (asprintf(&path, "%s/pod.json", p->dir) < 0)
                return -ENOMEM;
        size_t len = strlen(s);
        s[len] = '\n'; /* json_dumps' NUL: the file ends with a newline */
        r = write_file_atomic(path, s, len + 1, true);
        s[len] = '\0';
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "writing the pod record '%s'", path);
        return 0;
}

int node_pod_record_read(const char *state_dir, const char *uid, NodePod **ret, NodeErr *e) {
        if (!node_pod_uid_valid(uid))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "pod: 'uid' must be [a-z0-9-], 1..%d characters, got '%.80s'", NODE_POD_UID_MAX,
                                    uid ? uid : "(null)");
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/pods/%s/pod.json", state_dir, uid) < 0)
                return -ENOMEM;
        size_t len;
        int r = read_file_max(path, NODE_POD_RECORD_MAX, &text, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return node_err_set(e, NODE_ERR_RECORD, NULL, NULL, r, "reading the pod record '%s'", path);
        _cleanup_(node_pod_freep) NodePod *p = NULL;
        if ((r = node_pod_record_decode(text, len, path, state_dir, &p, e)) < 0)
                return r;
        if (!streq(p->uid, uid))
                return REC_ERR(e, path, "'uid' is '%s', but the record is in the directory of '%s'", p->uid, uid);
        *ret = TAKE_PTR(p);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        /* the record goes with the directory itself: last */
        const char *base = strrchr(path, '/');
        if (ftw->level == 1 && base && streq(base + 1, "pod.json"))
                return 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int node_pod_dir_remove(const NodePod *p) {
        _cleanup_free_ char *rec = NULL;
        if (asprintf(&rec, "%s/pod.json", p->dir) < 0)
                return -ENOMEM;
        /* everything but the record, depth first; the top directory's rmdir fails while the record is in it */
        (void) nftw(p->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (unlink(rec) < 0 && errno != ENOENT)
                return negative_errno();
        if (rmdir(p->dir) < 0 && errno != ENOENT)
                return negative_errno();
        IGNORE_RESULT(fsync_parent(p->dir)); /* durable removal is best effort: a record left is re-read */
        return 0;
}
