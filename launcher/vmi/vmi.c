/* SPDX-License-Identifier: Apache-2.0 */
/* VirtualMachineInstance (kubevirt.io/v1) -> LaunchVmi: the one place where the object is checked.
 * The top level (apiVersion, kind, VirtualMachine template, spec, spec.domain) is here; each concern
 * has its file: metadata.c, compute.c, storage.c + volume.c, network.c. */
#include "common/fileio.h"
#include "common/json-util.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* The objects the launcher reads: a VMI, or a VirtualMachine whose template names one. */
typedef enum ObjectKind {
        OBJECT_VMI,
        OBJECT_VM,
} ObjectKind;

static const char *const object_kind_table[] = {
        [OBJECT_VMI] = "VirtualMachineInstance",
        [OBJECT_VM] = "VirtualMachine",
};

LaunchVmi *launch_vmi_free(LaunchVmi *v) {
        if (!v)
                return NULL;
        free(v->name);
        free(v->namespace);
        free(v->uid);
        launch_kv_free(v->labels, v->n_labels);
        launch_kv_free(v->annotations, v->n_annotations);
        free(v->networks_annotation);
        free(v->cpu_model);
        free(v->firmware_uuid);
        free(v->kernel_path);
        free(v->initrd_path);
        free(v->kernel_args);
        for (size_t i = 0; i < v->n_disks; i++)
                launch_disk_done(&v->disks[i]);
        free(v->disks);
        for (size_t i = 0; i < v->n_interfaces; i++)
                launch_interface_done(&v->interfaces[i]);
        free(v->interfaces);
        for (size_t i = 0; i < v->n_networks; i++)
                launch_network_done(&v->networks[i]);
        free(v->networks);
        free(v->hostname);
        free(v->subdomain);
        free(v->state_dir);
        launch_warnings_clear(&v->warnings);
        free(v);
        return NULL;
}

char *launch_domain_name(const LaunchVmi *v) {
        char *s = NULL;
        if (asprintf(&s, "%s_%s", v->namespace, v->name) < 0)
                return NULL;
        return s;
}

static int parse_domain(VmiCtx *c, json_t *domain, const char *dpath, json_t *spec) {
        static const Field fields[] = {
                { "cpu", FLD_OK },        { "memory", FLD_OK },       { "resources", FLD_OK },  { "devices", FLD_OK },
                { "firmware", FLD_OK },   { "machine", FLD_WARN },    { "features", FLD_OK },   { "clock", FLD_WARN },
                { "chassis", FLD_WARN },  { "ioThreadsPolicy", FLD_WARN }, { "ioThreads", FLD_WARN },
                { "launchSecurity", FLD_REJECT }, {},
        };
        static const Field dev_fields[] = {
                { "disks", FLD_OK },
                { "interfaces", FLD_OK },
                { "autoattachPodInterface", FLD_OK },
                { "rng", FLD_WARN },
                { "autoattachGraphicsDevice", FLD_WARN },
                { "autoattachSerialConsole", FLD_WARN },
                { "autoattachMemBalloon", FLD_WARN },
                { "autoattachInputDevice", FLD_WARN },
                { "autoattachVSOCK", FLD_WARN },
                { "networkInterfaceMultiqueue", FLD_WARN },
                { "blockMultiQueue", FLD_WARN },
                { "inputs", FLD_WARN },
                { "watchdog", FLD_WARN },
                { "useVirtioTransitional", FLD_WARN },
                { "sound", FLD_WARN },
                { "logSerialConsole", FLD_WARN },
                { "disableHotplug", FLD_WARN },
                { "gpus", FLD_REJECT },
                { "hostDevices", FLD_REJECT },
                { "filesystems", FLD_REJECT },
                { "clientPassthrough", FLD_REJECT },
                { "tpm", FLD_REJECT },
                { "downwardMetrics", FLD_REJECT },
                {},
        };
        char path[128];
        int r;
        if ((r = vmi_require_object(c, domain, dpath)) < 0 || (r = vmi_check_fields(c, domain, dpath, fields)) < 0)
                return r;
        json_t *x;
        if ((x = json_object_get(domain, "cpu"))) {
                snprintf(path, sizeof path, "%s.cpu", dpath);
                if ((r = vmi_parse_cpu(c, x, path)) < 0)
                        return r;
        }
        if ((r = vmi_parse_memory_and_resources(c, domain, dpath)) < 0)
                return r;
        if ((x = json_object_get(domain, "firmware"))) {
                snprintf(path, sizeof path, "%s.firmware", dpath);
                if ((r = vmi_parse_firmware(c, x, path)) < 0)
                        return r;
        }
        if ((x = json_object_get(domain, "features"))) {
                snprintf(path, sizeof path, "%s.features", dpath);
                if ((r = vmi_parse_features(c, x, path)) < 0)
                        return r;
        }
        json_t *devices = json_object_get(domain, "devices");
        snprintf(path, sizeof path, "%s.devices", dpath);
        if (devices && ((r = vmi_require_object(c, devices, path)) < 0 || (r = vmi_check_fields(c, devices, path, dev_fields)) < 0))
                return r;
        if ((r = vmi_parse_disks_and_volumes(c, devices, path, spec)) < 0)
                return r;
        if ((r = vmi_parse_interfaces_and_networks(c, devices, path, spec)) < 0)
                return r;
        /* boot orders are unique over disks and interfaces */
        LaunchVmi *v = c->v;
        for (size_t i = 0; i < v->n_disks + v->n_interfaces; i++) {
                uint32_t bi = i < v->n_disks ? v->disks[i].boot_order : v->interfaces[i - v->n_disks].boot_order;
                const char *ni = i < v->n_disks ? v->disks[i].name : v->interfaces[i - v->n_disks].name;
                for (size_t k = 0; bi && k < i; k++) {
                        uint32_t bk = k < v->n_disks ? v->disks[k].boot_order : v->interfaces[k - v->n_disks].boot_order;
                        if (bk == bi)
                                return vmi_invalid(c, "%s: bootOrder %u used by both '%s' and '%s'", path, bi,
                                                   k < v->n_disks ? v->disks[k].name : v->interfaces[k - v->n_disks].name,
                                                   ni);
                }
        }
        return 0;
}

static int parse_spec(VmiCtx *c, json_t *spec) {
        static const Field fields[] = {
                { "domain", FLD_OK },
                { "volumes", FLD_OK },
                { "networks", FLD_OK },
                { "terminationGracePeriodSeconds", FLD_OK },
                { "hostname", FLD_OK },
                { "subdomain", FLD_OK },
                { "nodeSelector", FLD_WARN },
                { "affinity", FLD_WARN },
                { "tolerations", FLD_WARN },
                { "topologySpreadConstraints", FLD_WARN },
                { "schedulerName", FLD_WARN },
                { "priorityClassName", FLD_WARN },
                { "evictionStrategy", FLD_WARN },
                { "dnsPolicy", FLD_WARN },
                { "dnsConfig", FLD_WARN },
                { "architecture", FLD_WARN },
                { "livenessProbe", FLD_REJECT },
                { "readinessProbe", FLD_REJECT },
                { "accessCredentials", FLD_REJECT },
                { "startStrategy", FLD_REJECT },
                { "readinessGates", FLD_REJECT },
                { "resourceClaims", FLD_REJECT },
                {},
        };
        LaunchVmi *v = c->v;
        char dpath[96];
        int r;
        long long x;
        if ((r = vmi_require_object(c, spec, c->spec)) < 0 || (r = vmi_check_fields(c, spec, c->spec, fields)) < 0)
                return r;
        if ((r = json_get_int(spec, c->spec, "terminationGracePeriodSeconds", false, 0, 86400, &x, c->e)) < 0)
                return r;
        v->termination_grace_seconds = r > 0 ? x : 30;
        if ((r = vmi_get_str(c, spec, c->spec, "hostname", false, &v->hostname)) < 0 ||
            (r = vmi_get_str(c, spec, c->spec, "subdomain", false, &v->subdomain)) < 0)
                return r;
        if (v->hostname && (!vmi_valid_k8s_name(v->hostname, 63) || strchr(v->hostname, '.')))
                return vmi_invalid(c, "%s.hostname: must be a DNS-1123 label, got '%s'", c->spec, v->hostname);
        if (v->subdomain && (!vmi_valid_k8s_name(v->subdomain, 63) || strchr(v->subdomain, '.')))
                return vmi_invalid(c, "%s.subdomain: must be a DNS-1123 label, got '%s'", c->spec, v->subdomain);
        if (!v->hostname) {
                /* the name may hold dots; the hostname is its first label */
                size_t n = strcspn(v->name, ".");
                v->hostname = strndup(v->name, n > 63 ? 63 : n);
                if (!v->hostname)
                        return vmi_nomem(c);
        }
        json_t *domain = NULL;
        if ((r = json_get_object(spec, c->spec, "domain", true, &domain, c->e)) < 0)
                return r;
        snprintf(dpath, sizeof dpath, "%s.domain", c->spec);
        return parse_domain(c, domain, dpath, spec);
}

int launch_vmi_parse_json(json_t *root, const LaunchOptions *o, LaunchVmi **ret, KvErr *e) {
        static const Field top_fields[] = {
                { "apiVersion", FLD_OK }, { "kind", FLD_OK }, { "metadata", FLD_OK }, { "spec", FLD_OK }, { "status", FLD_OK }, {},
        };
        static const Field vm_spec_fields[] = {
                { "template", FLD_OK },           { "running", FLD_WARN },      { "runStrategy", FLD_WARN },
                { "dataVolumeTemplates", FLD_REJECT }, { "instancetype", FLD_REJECT }, { "preference", FLD_REJECT },
                {},
        };
        static const Field tmpl_fields[] = { { "metadata", FLD_OK }, { "spec", FLD_OK }, {} };
        static const LaunchOptions defaults = {};
        _cleanup_launch_vmi_ LaunchVmi *v = calloc(1, sizeof *v);
        if (!v)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        v->sockets = v->cores = v->threads = 1;
        VmiCtx c = { .v = v, .o = o ? o : &defaults, .e = e };
        snprintf(c.spec, sizeof c.spec, "spec");
        int r;
        if (!json_is_object(root))
                return vmi_invalid(&c, "input: must be an object, got %s", json_type_name(root));
        if ((r = vmi_check_fields(&c, root, "", top_fields)) < 0)
                return r;
        const char *api = NULL, *kind = NULL;
        if ((r = json_get_string(root, "input", "apiVersion", true, &api, e)) < 0 ||
            (r = json_get_string(root, "input", "kind", true, &kind, e)) < 0)
                return r;
        if (streq(api, "kubevirt.io/v1alpha3")) {
                if ((r = vmi_warn(&c, "apiVersion: 'kubevirt.io/v1alpha3' read as kubevirt.io/v1")) < 0)
                        return r;
        } else if (!streq(api, "kubevirt.io/v1"))
                return vmi_invalid(&c, "apiVersion: must be kubevirt.io/v1, got '%s'", api);
        int k = launch_table_lookup(object_kind_table, ELEMENTSOF(object_kind_table), kind);
        if (k < 0)
                return vmi_invalid(&c, "kind: must be VirtualMachineInstance or VirtualMachine, got '%s'", kind);
        bool is_vm = k == OBJECT_VM;

        json_t *meta = NULL, *spec = NULL;
        if ((r = json_get_object(root, "input", "metadata", true, &meta, e)) < 0 ||
            (r = json_get_object(root, "input", "spec", true, &spec, e)) < 0)
                return r;
        if (is_vm) {
                json_t *tmpl = NULL, *tmeta = NULL;
                if ((r = vmi_check_fields(&c, spec, "spec", vm_spec_fields)) < 0 ||
                    (r = json_get_object(spec, "spec", "template", true, &tmpl, e)) < 0 ||
                    (r = vmi_check_fields(&c, tmpl, "spec.template", tmpl_fields)) < 0 ||
                    (r = json_get_object(tmpl, "spec.template", "metadata", false, &tmeta, e)) < 0 ||
                    (r = json_get_object(tmpl, "spec.template", "spec", true, &spec, e)) < 0)
                        return r;
                snprintf(c.spec, sizeof c.spec, "spec.template.spec");
                if ((r = vmi_parse_metadata(&c, tmeta, "spec.template.metadata", meta)) < 0)
                        return r;
        } else if ((r = vmi_parse_metadata(&c, meta, "metadata", NULL)) < 0)
                return r;

        v->state_dir = launch_vmi_dir(c.o->state_dir, v);
        if (!v->state_dir)
                return vmi_nomem(&c);
        if ((r = parse_spec(&c, spec)) < 0 || (r = vmi_build_cloud_init(&c)) < 0)
                return r;
        *ret = TAKE_PTR(v);
        return 0;
}

static const char *doc_kind(json_t *doc) {
        return json_is_object(doc) ? json_string_value(json_object_get(doc, "kind")) : NULL;
}

int launch_vmi_parse_text(const char *text, size_t len, const char *what, const LaunchOptions *o, LaunchVmi **ret,
                          KvErr *e) {
        _cleanup_json_ json_t *docs = NULL;
        int r = launch_yaml_parse(text, len, what, &docs, e);
        if (r < 0)
                return r;
        size_t n = json_array_size(docs);
        if (n == 0)
                return kverr_set(e, KV_ERR_DECODE, -ENODATA, "%s: no document", what);
        if (n == 1)
                return launch_vmi_parse_json(json_array_get(docs, 0), o, ret, e);
        ssize_t pick = -1;
        size_t vmis = 0;
        for (size_t i = 0; i < n; i++) {
                const char *k = doc_kind(json_array_get(docs, i));
                if (launch_table_lookup(object_kind_table, ELEMENTSOF(object_kind_table), k) >= 0) {
                        vmis++;
                        pick = (ssize_t) i;
                }
        }
        if (vmis != 1)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                 "%s: %zu documents of which %zu are a VirtualMachineInstance/VirtualMachine; exactly one is required",
                                 what, n, vmis);
        _cleanup_launch_vmi_ LaunchVmi *v = NULL;
        if ((r = launch_vmi_parse_json(json_array_get(docs, pick), o, &v, e)) < 0)
                return r;
        if (launch_warnings_add(&v->warnings, "%s: %zu other document(s) ignored (using document %zd)", what, n - 1,
                                pick + 1) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(v);
        return 0;
}

int launch_vmi_load(const char *path, const LaunchOptions *o, LaunchVmi **ret, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;
        bool in = streq(path, "-");
        if (in)
                r = read_fd_max(STDIN_FILENO, LAUNCH_MAX_INPUT, &text, &len);
        else
                r = read_file_max(path, LAUNCH_MAX_INPUT, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cannot read '%s'", in ? "<stdin>" : path);
        return launch_vmi_parse_text(text, len, in ? "<stdin>" : path, o, ret, e);
}

char *launch_vmi_dir(const char *state_dir, const LaunchVmi *v) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s_%s", state_dir ? state_dir : LAUNCH_DEFAULT_STATE_DIR, v->namespace, v->name) < 0)
                return NULL;
        return p;
}

