/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: VMI parsing (YAML and JSON), rejections, warnings, domain XML goldens, accel.
 * Run from the repository root (fixtures in tests/data/launcher/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/addr.h"
#include "common/fileio.h"
#include "launcher/launcher-priv.h"
#include "tests/unit/helpers.h"
#include "tests/unit/tmpdir.h"

#define DATA "tests/data/launcher/"
static const LaunchOptions opts = { .image_dir = DATA "images", .state_dir = "/run/kvnet/launcher" };

static LaunchVmi *load_ok(const char *file) {
        LaunchVmi *v = NULL;
        KvErr e = {};
        int r = launch_vmi_load(file, &opts, &v, &e);
        if (r < 0)
                fail_msg("%s: %s", file, e.msg);
        return v;
}

static bool has_warning(const LaunchWarnings *w, const char *needle) {
        for (size_t i = 0; i < w->n; i++)
                if (strstr(w->items[i], needle))
                        return true;
        return false;
}

static void test_quantity(void **state) {
        (void) state;
        uint64_t b = 0;
        assert_int_equal(launch_parse_quantity("128Mi", &b), 0);
        assert_int_equal(b, 128ull << 20);
        assert_int_equal(launch_parse_quantity("1Gi", &b), 0);
        assert_int_equal(b, 1ull << 30);
        assert_int_equal(launch_parse_quantity("512M", &b), 0);
        assert_int_equal(b, 512000000ull);
        assert_int_equal(launch_parse_quantity("1.5Gi", &b), 0);
        assert_int_equal(b, 3ull << 29);
        assert_int_equal(launch_parse_quantity("1e9", &b), 0);
        assert_int_equal(b, 1000000000ull);
        assert_int_equal(launch_parse_quantity("4096", &b), 0);
        assert_int_equal(b, 4096);
        assert_int_equal(launch_parse_quantity("1E", &b), 0);
        assert_int_equal(b, 1000000000000000000ull);
        assert_true(launch_parse_quantity("", &b) < 0);
        assert_true(launch_parse_quantity("12x8Mi", &b) < 0);
        assert_true(launch_parse_quantity("128mi", &b) < 0);
        assert_true(launch_parse_quantity("0.5", &b) < 0); /* half a byte */
        assert_true(launch_parse_quantity("-1Gi", &b) < 0);
        assert_true(launch_parse_quantity("100Ei", &b) < 0);
        assert_true(launch_parse_quantity("Mi", &b) < 0);
        assert_true(launch_parse_quantity("1Gi ", &b) < 0);
}

static void test_mac_pci(void **state) {
        (void) state;
        uint8_t m[6];
        assert_int_equal(launch_parse_mac("02:00:00:AA:bb:01", m), 0);
        assert_int_equal(m[3], 0xaa);
        assert_int_equal(launch_parse_mac("02-00-00-00-5a-01", m), 0);
        assert_true(launch_parse_mac("02:00:00:00:00", m) < 0);
        assert_true(launch_parse_mac("02:00-00:00:00:01", m) < 0);
        assert_true(launch_parse_mac("03:00:00:00:00:01", m) < 0);
        unsigned d, b, s, f;
        assert_int_equal(launch_parse_pci("0000:3b:02.1", &d, &b, &s, &f), 0);
        assert_int_equal(b, 0x3b);
        assert_int_equal(s, 2);
        assert_int_equal(f, 1);
        assert_true(launch_parse_pci("0000:3b:20.1", NULL, NULL, NULL, NULL) < 0);
        assert_true(launch_parse_pci("0000:3b:02.8", NULL, NULL, NULL, NULL) < 0);
        assert_true(launch_parse_pci("3b:02.1", NULL, NULL, NULL, NULL) < 0);
}

/* The kinds the VMI spells as strings: every enum value has its key, and the keys read back. */
static void test_kind_tables(void **state) {
        (void) state;
        assert_string_equal(launch_disk_bus_to_string(LAUNCH_BUS_SATA), "sata");
        assert_int_equal(launch_disk_bus_from_string("scsi"), LAUNCH_BUS_SCSI);
        assert_true(launch_disk_bus_from_string("ide") < 0);
        assert_string_equal(launch_binding_to_string(LAUNCH_BINDING_SRIOV), "sriov");
        assert_int_equal(launch_binding_from_string("masquerade"), LAUNCH_BINDING_MASQUERADE);
        assert_true(launch_binding_from_string("slirp") < 0);
        assert_int_equal(launch_protocol_from_string("UDP"), LAUNCH_PROTO_UDP);
        assert_true(launch_protocol_from_string("udp") < 0);
        assert_string_equal(launch_volume_kind_to_string(LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD), "cloudInitNoCloud");
        assert_int_equal(launch_volume_kind_from_string("emptyDisk"), LAUNCH_VOLUME_EMPTY_DISK);
        assert_true(launch_volume_kind_from_string("dataVolume") < 0);
        assert_string_equal(launch_network_kind_to_string(LAUNCH_NET_MULTUS), "multus");
        assert_int_equal(launch_network_kind_from_string("pod"), LAUNCH_NET_POD);
        assert_null(launch_network_kind_to_string((LaunchNetworkKind) 99));
        assert_true(launch_network_kind_from_string(NULL) < 0);
}

static void test_yaml_types(void **state) {
        (void) state;
        const char *y = "a: 10\nb: '10'\nc: true\nd: ~\ne: 0x1f\nf: 1.5\ng: text\nh: !!str 12\ni: [1, two]\n";
        json_t *docs = NULL;
        KvErr e = {};
        assert_int_equal(launch_yaml_parse(y, strlen(y), "t", &docs, &e), 0);
        json_t *o = json_array_get(docs, 0);
        assert_true(json_is_integer(json_object_get(o, "a")));
        assert_true(json_is_string(json_object_get(o, "b")));
        assert_true(json_is_true(json_object_get(o, "c")));
        assert_true(json_is_null(json_object_get(o, "d")));
        assert_int_equal(json_integer_value(json_object_get(o, "e")), 31);
        assert_true(json_is_real(json_object_get(o, "f")));
        assert_string_equal(json_string_value(json_object_get(o, "g")), "text");
        assert_string_equal(json_string_value(json_object_get(o, "h")), "12");
        assert_int_equal(json_array_size(json_object_get(o, "i")), 2);
        json_decref(docs);

        const char *dup = "a: 1\nb: 2\na: 3\n";
        kverr_clear(&e);
        assert_true(launch_yaml_parse(dup, strlen(dup), "dup.yaml", &docs, &e) < 0);
        assert_non_null(strstr(e.msg, "dup.yaml:3:1: duplicate key: a"));
        const char *alias = "a: &x [1]\nb: *x\n";
        kverr_clear(&e);
        assert_true(launch_yaml_parse(alias, strlen(alias), "al", &docs, &e) < 0);
        assert_non_null(strstr(e.msg, "aliases are not supported"));
}

/* Field-by-field equality of two parsed VMIs. */
static void assert_vmi_equal(const LaunchVmi *a, const LaunchVmi *b) {
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->namespace, b->namespace);
        assert_string_equal(a->uid, b->uid);
        assert_int_equal(a->n_labels, b->n_labels);
        for (size_t i = 0; i < a->n_labels; i++) {
                assert_string_equal(a->labels[i].key, b->labels[i].key);
                assert_string_equal(a->labels[i].value, b->labels[i].value);
        }
        assert_int_equal(a->sockets, b->sockets);
        assert_int_equal(a->cores, b->cores);
        assert_int_equal(a->threads, b->threads);
        assert_int_equal(a->memory, b->memory);
        assert_int_equal(a->termination_grace_seconds, b->termination_grace_seconds);
        assert_int_equal(a->n_disks, b->n_disks);
        for (size_t i = 0; i < a->n_disks; i++) {
                assert_string_equal(a->disks[i].name, b->disks[i].name);
                assert_string_equal(a->disks[i].path, b->disks[i].path);
                assert_int_equal(a->disks[i].bus, b->disks[i].bus);
                assert_int_equal(a->disks[i].format, b->disks[i].format);
                assert_int_equal(a->disks[i].boot_order, b->disks[i].boot_order);
        }
        assert_int_equal(a->n_interfaces, b->n_interfaces);
        for (size_t i = 0; i < a->n_interfaces; i++) {
                assert_string_equal(a->interfaces[i].name, b->interfaces[i].name);
                assert_int_equal(a->interfaces[i].binding, b->interfaces[i].binding);
                assert_memory_equal(a->interfaces[i].mac, b->interfaces[i].mac, 6);
                assert_string_equal(a->interfaces[i].model, b->interfaces[i].model);
        }
        assert_int_equal(a->n_networks, b->n_networks);
        assert_int_equal(a->warnings.n, b->warnings.n);
}

static void test_yaml_json_same(void **state) {
        (void) state;
        LaunchVmi *y = load_ok(DATA "bridge-containerdisk.yaml");
        LaunchVmi *j = load_ok(DATA "bridge-containerdisk.json");
        assert_vmi_equal(y, j);
        assert_string_equal(y->name, "vm-bridge");
        assert_string_equal(y->namespace, "tenant-a");
        assert_int_equal(y->memory, 128ull << 20);
        assert_int_equal(y->cores, 2);
        assert_int_equal(y->termination_grace_seconds, 10);
        assert_int_equal(y->disks[0].format, LAUNCH_FORMAT_QCOW2);
        assert_string_equal(y->disks[0].path, DATA "images/quay.io/kubevirt/cirros:latest/disk/cirros.qcow2");
        assert_int_equal(y->interfaces[0].binding, LAUNCH_BINDING_BRIDGE);
        assert_int_equal(y->warnings.n, 0);
        launch_vmi_free(y);
        launch_vmi_free(j);
}

static void test_parse_details(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "masquerade-cloudinit.yaml");
        assert_int_equal(v->memory, 512000000ull);
        assert_string_equal(v->hostname, "web1");
        assert_int_equal(v->interfaces[0].binding, LAUNCH_BINDING_MASQUERADE);
        assert_int_equal(v->interfaces[0].n_ports, 2);
        assert_int_equal(v->interfaces[0].ports[0].port, 80);
        assert_string_equal(v->interfaces[0].ports[0].name, "http");
        assert_int_equal(v->interfaces[0].ports[1].protocol, LAUNCH_PROTO_UDP);
        const LaunchDisk *ci = &v->disks[1];
        assert_int_equal(ci->kind, LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD);
        assert_string_equal(ci->cloud_init.user_data, "#cloud-config\npassword: kvnet\n");
        assert_non_null(strstr(ci->cloud_init.network_config, "dhcp4: true"));
        assert_string_equal(ci->cloud_init.meta_data, "instance-id: vm-masq\nlocal-hostname: web1.svc1.default.svc\n");
        assert_string_equal(ci->path, "/run/kvnet/launcher/default_vm-masq/cloudinitdisk-cidata.iso");
        /* warnings for known-but-ignored fields, each naming the path */
        assert_true(has_warning(&v->warnings, "spec.domain.machine"));
        assert_true(has_warning(&v->warnings, "spec.domain.devices.rng"));
        assert_true(has_warning(&v->warnings, "spec.domain.devices.autoattachGraphicsDevice"));
        assert_int_equal(v->warnings.n, 3);

        char dir[] = "/tmp/kvlaunch-ci.XXXXXX";
        assert_non_null(mkdtemp(dir));
        assert_int_equal(launch_cloudinit_write_files(ci, dir), 0);
        char p[128];
        char *text = NULL;
        size_t len;
        snprintf(p, sizeof p, "%s/meta-data", dir);
        assert_int_equal(read_file_max(p, 4096, &text, &len), 0);
        assert_non_null(strstr(text, "instance-id: vm-masq"));
        free(text);
        unlink(p);
        snprintf(p, sizeof p, "%s/user-data", dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/network-config", dir);
        assert_int_equal(access(p, R_OK), 0);
        unlink(p);
        rmdir(dir);
        launch_vmi_free(v);

        v = load_ok(DATA "multus-vm.yaml");
        assert_string_equal(v->name, "vm-multus");
        assert_string_equal(v->namespace, "tenant-b");
        assert_string_equal(v->networks_annotation, "[{\"name\":\"storage-net\",\"namespace\":\"tenant-b\"}]");
        assert_true(v->networks[0].multus_default);
        assert_string_equal(v->networks[1].multus_network_name, "storage-net");
        assert_int_equal(v->disks[1].kind, LAUNCH_VOLUME_EMPTY_DISK);
        assert_int_equal(v->disks[1].capacity, 2ull << 30);
        assert_int_equal(v->disks[2].device, LAUNCH_DEVICE_CDROM);
        assert_true(has_warning(&v->warnings, "spec.runStrategy"));
        launch_vmi_free(v);
}

static void test_unknown_field_warns(void **state) {
        (void) state;
        const char *y = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: w}\n"
                        "spec:\n  frobnicate: 1\n  domain:\n    memory: {guest: 64Mi}\n    devices: {blinkenlights: true}\n";
        LaunchVmi *v = NULL;
        KvErr e = {};
        assert_int_equal(launch_vmi_parse_text(y, strlen(y), "w", &opts, &v, &e), 0);
        assert_true(has_warning(&v->warnings, "spec.frobnicate: unknown field"));
        assert_true(has_warning(&v->warnings, "spec.domain.devices.blinkenlights: unknown field"));
        /* no interfaces: pod network autoattached, and said so */
        assert_int_equal(v->n_interfaces, 1);
        assert_true(has_warning(&v->warnings, "attaching the pod network"));
        launch_vmi_free(v);
}

typedef struct BadCase {
        const char *file;
        const char *needle1, *needle2;
} BadCase;

static const BadCase bad_cases[] = {
        { "bad-memory.yaml", "spec.domain.memory.guest", "'12x8Mi'" },
        { "unknown-binding.yaml", "interfaces[0].tunnel", "unknown binding" },
        { "macvtap.yaml", "spec.domain.devices.interfaces[0].macvtap", "not supported by kvnet-launcher" },
        { "slirp.yaml", "interfaces[0].slirp", "not supported" },
        { "two-bindings.yaml", "interfaces[0]", "more than one binding" },
        { "iface-no-network.yaml", "interfaces[1]", "'orphan' has no network" },
        { "network-unused.yaml", "spec.networks[1]", "'spare' is not used" },
        { "two-pod.yaml", "spec.networks[1]", "more than one pod network ('a' and 'b')" },
        { "masq-multus.yaml", "interfaces[0].masquerade", "'sec' is a multus network" },
        { "sriov-pod.yaml", "interfaces[0].sriov", "pod network 'default'" },
        { "bad-mac.yaml", "interfaces[0].macAddress", "'02:00:00:00:00:zz'" },
        { "multicast-mac.yaml", "interfaces[0].macAddress", "'01:00:5e:00:00:01'" },
        { "pvc.yaml", "spec.volumes[1].persistentVolumeClaim", "not supported by kvnet-launcher" },
        { "syntax.yaml", "syntax.yaml:7:", "YAML syntax error" },
        { "multi-doc.yaml", "2 documents", "exactly one" },
        { "wrong-type-cores.yaml", "spec.domain.cpu: 'cores'", "must be an integer, got string" },
        { "wrong-type-interfaces.json", "'interfaces'", "must be an array, got object" },
        { "gpus.yaml", "spec.domain.devices.gpus", "not supported" },
        { "liveness.yaml", "spec.livenessProbe", "not supported" },
        { "dup-iface.yaml", "interfaces[1].name", "duplicate interface name 'default'" },
        { "bad-model.yaml", "interfaces[0].model", "'vmxnet3'" },
        { "bad-bus.yaml", "disks[0].disk.bus", "'ide'" },
        { "ports-bridge.yaml", "interfaces[0].ports", "masquerade" },
        { "bad-port.yaml", "ports[0]", "70000" },
        { "no-memory.yaml", "spec.domain.memory.guest", "is required" },
        { "disk-no-volume.yaml", "disks[0]", "'lost' has no volume" },
        { "wrong-kind.yaml", "apiVersion", "'v1'" },
};

static void test_rejects(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                char path[256];
                snprintf(path, sizeof path, DATA "bad/%s", bad_cases[i].file);
                LaunchVmi *v = NULL;
                KvErr e = {};
                int r = launch_vmi_load(path, &opts, &v, &e);
                if (r >= 0)
                        fail_msg("%s: accepted", bad_cases[i].file);
                assert_null(v);
                if (!strstr(e.msg, bad_cases[i].needle1) || !strstr(e.msg, bad_cases[i].needle2))
                        fail_msg("%s: message '%s' lacks '%s' / '%s'", bad_cases[i].file, e.msg, bad_cases[i].needle1,
                                 bad_cases[i].needle2);
        }
}

static void test_inline_rejects(void **state) {
        (void) state;
        static const struct {
                const char *yaml, *needle;
        } cases[] = {
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: Bad_Name}\nspec: {domain: {memory: {guest: 64Mi}}}\n",
                  "'Bad_Name'" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 1Ki}}}\n",
                  "16Mi..4Ti" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: a}\nspec: {dataVolumeTemplates: [], template: {spec: {domain: {memory: {guest: 64Mi}}}}}\n",
                  "spec.dataVolumeTemplates: not supported" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 64Mi}, firmware: {kernelBoot: {container: {image: kvnet.local/demo-guest, kernelPath: vmlinuz}}}}}\n",
                  "kernelPath: must be an absolute path inside the image without '.' or '..', got 'vmlinuz'" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 64Mi}, firmware: {kernelBoot: {container: {kernelPath: /vmlinuz}}}}}\n",
                  "kernelBoot.container.image: is required" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 64Mi}, devices: {disks: [{name: c, disk: {}}]}}, volumes: [{name: c, containerDisk: {image: /x.raw}}]}\n",
                  "spec.volumes[0].containerDisk.image: '/x.raw' is a host path" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 64Mi}, devices: {disks: [{name: c, cdrom: {bus: virtio}}]}}, volumes: [{name: c, containerDisk: {image: kvnet.local/iso}}]}\n",
                  "cdrom cannot use bus virtio" },
                { "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\nspec: {domain: {memory: {guest: 64Mi}, devices: {interfaces: [{name: p, bridge: {}}, {name: q, bridge: {}, macAddress: '02:00:00:00:00:01'}, {name: r, bridge: {}, macAddress: '02:00:00:00:00:01'}]}}, networks: [{name: p, pod: {}}, {name: q, multus: {networkName: n}}, {name: r, multus: {networkName: m}}]}\n",
                  "same MAC as interface 'q'" },
                { "- 1\n- 2\n", "must be an object, got array" },
                { "", "no document" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                LaunchVmi *v = NULL;
                KvErr e = {};
                int r = launch_vmi_parse_text(cases[i].yaml, strlen(cases[i].yaml), "inline", &opts, &v, &e);
                if (r >= 0 || !strstr(e.msg, cases[i].needle))
                        fail_msg("case %zu: r=%d msg '%s' lacks '%s'", i, r, e.msg, cases[i].needle);
                assert_null(v);
        }
}

static void test_multi_doc_one_vmi(void **state) {
        (void) state;
        const char *y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
                        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: only}\n"
                        "spec: {domain: {memory: {guest: 64Mi}}}\n";
        LaunchVmi *v = NULL;
        KvErr e = {};
        assert_int_equal(launch_vmi_parse_text(y, strlen(y), "m", &opts, &v, &e), 0);
        assert_string_equal(v->name, "only");
        assert_true(has_warning(&v->warnings, "1 other document(s) ignored"));
        launch_vmi_free(v);
}

/* An unplugged interface (state absent) and its network are not the domain's; other states are refused. */
static void test_interface_absent(void **state) {
        (void) state;
        const char *y = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: hp}\n"
                        "spec:\n  domain:\n    memory: {guest: 64Mi}\n    devices:\n      interfaces:\n"
                        "      - {name: default, bridge: {}}\n      - {name: blue, bridge: {}, state: absent}\n"
                        "      - {name: red, bridge: {}}\n  networks:\n  - {name: default, pod: {}}\n"
                        "  - {name: blue, multus: {networkName: blue}}\n  - {name: red, multus: {networkName: red}}\n";
        LaunchVmi *v = NULL;
        KvErr e = {};
        assert_int_equal(launch_vmi_parse_text(y, strlen(y), "hp", &opts, &v, &e), 0);
        assert_int_equal(v->n_interfaces, 2);
        assert_int_equal(v->n_networks, 2);
        assert_string_equal(v->interfaces[0].name, "default");
        assert_string_equal(v->interfaces[1].name, "red");
        assert_string_equal(v->networks[v->interfaces[1].network].name, "red");
        launch_vmi_free(v);
        const char *down = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: hp}\n"
                           "spec:\n  domain:\n    memory: {guest: 64Mi}\n    devices:\n      interfaces:\n"
                           "      - {name: default, bridge: {}, state: down}\n  networks:\n  - {name: default, pod: {}}\n";
        v = NULL;
        assert_true(launch_vmi_parse_text(down, strlen(down), "hp", &opts, &v, &e) < 0);
        assert_non_null(strstr(e.msg, "state: 'down' not supported"));
}

/* ---------------------------------------------------------------- domain XML goldens */

static void check_golden(const char *fixture, const char *golden, const LaunchNic *override, size_t n_override) {
        LaunchVmi *v = load_ok(fixture);
        LaunchNic *nics = NULL;
        size_t n = 0;
        LaunchWarnings w = {};
        assert_int_equal(launch_nics_synthesize(v, &w, &nics, &n), 0);
        for (size_t i = 0; i < n_override; i++)
                for (size_t k = 0; k < n; k++)
                        if (streq(nics[k].name, override[i].name))
                                nics[k] = override[i];
        LaunchDomainOptions o = { .accel = LAUNCH_ACCEL_TCG };
        char *xml = NULL;
        KvErr e = {};
        int r = launch_domain_xml(v, nics, n, &o, &w, &xml, &e);
        if (r < 0)
                fail_msg("%s: %s", fixture, e.msg);
        char *want = NULL;
        size_t len;
        assert_int_equal(read_file_max(golden, 1 << 20, &want, &len), 0);
        if (!streq(xml, want)) {
                fprintf(stderr, "--- %s\n%s\n--- got\n%s\n", golden, want, xml);
                fail_msg("%s differs from golden", fixture);
        }
        free(want);
        free(xml);
        free(nics);
        launch_warnings_clear(&w);
        launch_vmi_free(v);
}

static void test_golden_bridge(void **state) {
        (void) state;
        check_golden(DATA "bridge-containerdisk.yaml", DATA "bridge-containerdisk.xml", NULL, 0);
        check_golden(DATA "bridge-containerdisk.json", DATA "bridge-containerdisk.xml", NULL, 0);
}
static void test_golden_masquerade(void **state) {
        (void) state;
        check_golden(DATA "masquerade-cloudinit.yaml", DATA "masquerade-cloudinit.xml", NULL, 0);
}
static void test_golden_sriov(void **state) {
        (void) state;
        LaunchNic ov[2] = {
                { .name = "fast", .kind = NIC_HOSTDEV, .pci = "0000:3b:02.1", .mac = { 2, 0, 0, 0, 0x5a, 1 } },
                { .name = "default", .kind = NIC_TAP, .tap = "tap-vm7", .mtu = 1450,
                  .mac = { 0x02, 0x9f, 0xfe, 0x5b, 0x82, 0x59 } },
        };
        check_golden(DATA "sriov.yaml", DATA "sriov.xml", ov, 2);
}
static void test_golden_kernelboot(void **state) {
        (void) state;
        check_golden(DATA "kernelboot.yaml", DATA "kernelboot.xml", NULL, 0);
}
static void test_golden_multus(void **state) {
        (void) state;
        check_golden(DATA "multus-vm.yaml", DATA "multus-vm.xml", NULL, 0);
}

static void test_domain_details(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "masquerade-cloudinit.yaml");
        LaunchNic *nics = NULL;
        size_t n = 0;
        LaunchWarnings w = {};
        assert_int_equal(launch_nics_synthesize(v, &w, &nics, &n), 0);
        assert_string_equal(nics[0].tap, "tap0");
        assert_int_equal(nics[0].mac[0], 0x02);
        /* host-passthrough: kept under KVM, replaced (with a warning) under TCG */
        LaunchDomainOptions o = { .accel = LAUNCH_ACCEL_KVM, .serial_log = "/tmp/a&b.log" };
        char *xml = NULL;
        KvErr e = {};
        assert_int_equal(launch_domain_xml(v, nics, n, &o, &w, &xml, &e), 0);
        assert_non_null(strstr(xml, "<domain type='kvm'>"));
        assert_non_null(strstr(xml, "mode='host-passthrough'"));
        assert_non_null(strstr(xml, "path='/tmp/a&amp;b.log'"));
        assert_int_equal(w.n, 0);
        free(xml);
        o.accel = LAUNCH_ACCEL_TCG;
        assert_int_equal(launch_domain_xml(v, nics, n, &o, &w, &xml, &e), 0);
        assert_null(strstr(xml, "host-passthrough"));
        assert_true(has_warning(&w, "host-passthrough' needs KVM"));
        free(xml);
        /* NIC list must match the interfaces */
        nics[0].kind = NIC_HOSTDEV;
        assert_true(launch_domain_xml(v, nics, n, &o, &w, &xml, &e) < 0);
        assert_non_null(strstr(e.msg, "must be a tap"));
        free(nics);
        launch_warnings_clear(&w);
        launch_vmi_free(v);
}

/* ---------------------------------------------------------------- NIC hot-plug requests and XML */

static void attach_err(const char *args, const char *want) {
        json_t *j = test_json(args);
        LaunchVmi *v = load_ok(DATA "bridge-containerdisk.yaml");
        LaunchAttachReq q = {};
        KvErr e = {};
        assert_true(launch_attach_req_parse(j, v, &q, &e) < 0);
        if (!streq(e.msg, want))
                fail_msg("args %s:\n got  '%s'\n want '%s'", args, e.msg, want);
        assert_null(q.ifc.name); /* untouched on failure */
        json_decref(j);
        launch_vmi_free(v);
}

static void test_hotplug_attach_parse(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "bridge-containerdisk.yaml");
        KvErr e = {};
        LaunchAttachReq q = {};
        json_t *j = test_json("{\"name\":\"net1\",\"tap\":\"kvtap1\",\"mac\":\"02:4B:56:78:00:0b\",\"model\":\"e1000e\","
                              "\"mtu\":1400}");
        assert_int_equal(launch_attach_req_parse(j, v, &q, &e), 0);
        assert_string_equal(q.ifc.name, "net1");
        assert_ptr_equal(q.nic.name, q.ifc.name);
        assert_string_equal(q.nic.tap, "kvtap1");
        assert_int_equal(q.nic.kind, NIC_TAP);
        assert_int_equal(q.ifc.binding, LAUNCH_BINDING_BRIDGE);
        assert_string_equal(q.ifc.model, "e1000e");
        assert_int_equal(q.nic.mtu, 1400);
        const uint8_t mac[6] = { 0x02, 0x4b, 0x56, 0x78, 0x00, 0x0b };
        assert_memory_equal(q.nic.mac, mac, 6);
        assert_string_equal(q.ifc.pci_address, "");
        assert_int_equal(q.ifc.boot_order, 0);
        launch_attach_req_done(&q);
        json_decref(j);
        /* an SR-IOV VF: the sriov binding's <hostdev> */
        j = test_json("{\"name\":\"vf\",\"pci\":\"0000:3b:02.1\"}");
        assert_int_equal(launch_attach_req_parse(j, v, &q, &e), 0);
        assert_int_equal(q.nic.kind, NIC_HOSTDEV);
        assert_int_equal(q.ifc.binding, LAUNCH_BINDING_SRIOV);
        assert_string_equal(q.nic.pci, "0000:3b:02.1");
        char *vfxml = NULL;
        assert_int_equal(launch_interface_xml(&q.ifc, &q.nic, &vfxml, &e), 0);
        assert_non_null(strstr(vfxml, "<hostdev mode='subsystem' type='pci' managed='no'>"));
        assert_non_null(strstr(vfxml, "bus='0x3b' slot='0x02' function='0x1'"));
        assert_non_null(strstr(vfxml, "<alias name='ua-vf'/>"));
        free(vfxml);
        json_t *back = launch_attach_req_to_json(&q);
        assert_string_equal(json_string_value(json_object_get(json_object_get(back, "args"), "pci")), "0000:3b:02.1");
        assert_null(json_object_get(json_object_get(back, "args"), "tap"));
        json_decref(back);
        launch_attach_req_done(&q);
        json_decref(j);
        /* defaults: virtio, no MTU, the MAC a VMI interface of that name gets without macAddress */
        j = test_json("{\"name\":\"net_2-x\",\"tap\":\"t\"}");
        assert_int_equal(launch_attach_req_parse(j, v, &q, &e), 0);
        assert_string_equal(q.ifc.model, "virtio");
        assert_int_equal(q.nic.mtu, 0);
        uint8_t want[6];
        kv_vm_nic_mac(v->namespace, v->name, "net_2-x", want);
        assert_memory_equal(q.nic.mac, want, 6);
        launch_attach_req_done(&q);
        json_decref(j);
        kverr_clear(&e);
        assert_true(launch_attach_req_parse(NULL, v, &q, &e) < 0);
        assert_string_equal(e.msg, "attach-interface: 'args' is required");
        launch_vmi_free(v);
        attach_err("[1]", "attach-interface: 'args' must be an object, got array");
        attach_err("{\"tap\":\"kvtap1\"}", "attach-interface: 'name' is required");
        attach_err("{\"name\":\"net1\"}",
                   "attach-interface: give 'tap' (a tap in the launcher's namespace) or 'pci' (an SR-IOV VF), got neither");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"pci\":\"0000:3b:02.1\"}",
                   "attach-interface: give 'tap' (a tap in the launcher's namespace) or 'pci' (an SR-IOV VF), not both");
        attach_err("{\"name\":\"net1\",\"pci\":\"3b:02.1/../x\"}",
                   "attach-interface: 'pci' must be a PCI address (0000:3b:02.1), got '3b:02.1/../x'");
        attach_err("{\"name\":\"net1\",\"pci\":7}", "attach-interface: 'pci' must be a string, got integer");
        attach_err("{\"name\":7,\"tap\":\"t\"}", "attach-interface: 'name' must be a string, got integer");
        attach_err("{\"name\":\"\",\"tap\":\"t\"}",
                   "attach-interface: 'name' must be 1..63 characters of [A-Za-z0-9_-], got ''");
        attach_err("{\"name\":\"a'b\",\"tap\":\"t\"}",
                   "attach-interface: 'name' must be 1..63 characters of [A-Za-z0-9_-], got 'a'b'");
        attach_err("{\"name\":\"n1234567890123456789012345678901234567890123456789012345678901234\",\"tap\":\"t\"}",
                   "attach-interface: 'name' must be 1..63 characters of [A-Za-z0-9_-], got "
                   "'n1234567890123456789012345678901234567890123456789012345678901234'");
        attach_err("{\"name\":\"net1\",\"tap\":\"tap-with-16chars\"}",
                   "attach-interface: 'tap' must be an interface name of 1..15 characters, got 'tap-with-16chars'");
        attach_err("{\"name\":\"net1\",\"tap\":\"a/b\"}",
                   "attach-interface: 'tap' must be an interface name of 1..15 characters, got 'a/b'");
        attach_err("{\"name\":\"net1\",\"tap\":\"..\"}",
                   "attach-interface: 'tap' must be an interface name of 1..15 characters, got '..'");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mac\":\"02:00:00:00:00\"}",
                   "attach-interface: 'mac' must be a unicast MAC address (02:xx:xx:xx:xx:xx), got '02:00:00:00:00'");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mac\":\"03:00:00:00:00:01\"}",
                   "attach-interface: 'mac' must be a unicast MAC address (02:xx:xx:xx:xx:xx), got '03:00:00:00:00:01'");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mac\":\"00:00:00:00:00:00\"}",
                   "attach-interface: 'mac' must be a unicast MAC address (02:xx:xx:xx:xx:xx), got '00:00:00:00:00:00'");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"model\":\"virtio-net\"}",
                   "attach-interface: 'model' must be one of virtio, e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet, "
                   "got 'virtio-net'");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mtu\":67}", "attach-interface: 'mtu' must be 68..65535, got 67");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mtu\":65536}",
                   "attach-interface: 'mtu' must be 68..65535, got 65536");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"mtu\":\"1500\"}",
                   "attach-interface: 'mtu' must be an integer, got string");
        attach_err("{\"name\":\"net1\",\"tap\":\"t\",\"bridge\":{}}", "attach-interface: unknown key 'bridge'");
}

/* The node side's request (to-JSON) is what the launcher parses back. */
static void test_hotplug_roundtrip(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "bridge-containerdisk.yaml");
        KvErr e = {};
        LaunchAttachReq q = { .ifc = { .name = (char *) "net1", .model = "e1000" },
                              .nic = { .name = "net1", .kind = NIC_TAP, .tap = "kvtap1", .mtu = 9000,
                                       .mac = { 0x02, 0, 0, 0, 0x10, 0xff } } };
        json_t *j = launch_attach_req_to_json(&q);
        assert_non_null(j);
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(text, "{\"args\":{\"mac\":\"02:00:00:00:10:ff\",\"model\":\"e1000\",\"mtu\":9000,"
                                  "\"name\":\"net1\",\"tap\":\"kvtap1\"},\"op\":\"attach-interface\"}");
        free(text);
        LaunchAttachReq back = {};
        assert_int_equal(launch_attach_req_parse(json_object_get(j, "args"), v, &back, &e), 0);
        assert_string_equal(back.ifc.name, "net1");
        assert_string_equal(back.ifc.model, "e1000");
        assert_string_equal(back.nic.tap, "kvtap1");
        assert_int_equal(back.nic.mtu, 9000);
        assert_memory_equal(back.nic.mac, q.nic.mac, 6);
        launch_attach_req_done(&back);
        json_decref(j);
        LaunchDetachReq d = { .name = (char *) "default" };
        j = launch_detach_req_to_json(&d);
        text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(text, "{\"args\":{\"name\":\"default\"},\"op\":\"detach-interface\"}");
        free(text);
        LaunchDetachReq dback = {};
        assert_int_equal(launch_detach_req_parse(json_object_get(j, "args"), &dback, &e), 0);
        assert_string_equal(dback.name, "default");
        launch_detach_req_done(&dback);
        json_decref(j);
        launch_vmi_free(v);
}

static void test_hotplug_detach_parse(void **state) {
        (void) state;
        KvErr e = {};
        LaunchDetachReq q = {};
        json_t *j = test_json("{\"name\":\"default\"}");
        assert_int_equal(launch_detach_req_parse(j, &q, &e), 0);
        assert_string_equal(q.name, "default");
        launch_detach_req_done(&q);
        assert_null(q.name);
        json_decref(j);
        static const struct {
                const char *args, *msg;
        } bad[] = {
                { "{}", "detach-interface: 'name' is required" },
                { "{\"name\":\"net 1\"}", "detach-interface: 'name' must be 1..63 characters of [A-Za-z0-9_-], got 'net 1'" },
                { "{\"name\":\"net1\",\"tap\":\"t\"}", "detach-interface: unknown key 'tap'" },
                { "\"net1\"", "detach-interface: 'args' must be an object, got string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                j = json_loads(bad[i].args, JSON_DECODE_ANY, NULL);
                assert_non_null(j);
                kverr_clear(&e);
                assert_true(launch_detach_req_parse(j, &q, &e) < 0);
                assert_string_equal(e.msg, bad[i].msg);
                assert_null(q.name);
                json_decref(j);
        }
        kverr_clear(&e);
        assert_true(launch_detach_req_parse(NULL, &q, &e) < 0);
        assert_string_equal(e.msg, "detach-interface: 'args' is required");
}

/* attach-interface's XML: golden, and the very element the boot path writes for the same NIC. */
static void test_hotplug_xml(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "bridge-containerdisk.yaml");
        KvErr e = {};
        LaunchAttachReq q = {};
        json_t *j = test_json("{\"name\":\"net1\",\"tap\":\"kvtap1\",\"mac\":\"02:4b:56:78:00:0b\",\"mtu\":1400}");
        assert_int_equal(launch_attach_req_parse(j, v, &q, &e), 0);
        char *xml = NULL;
        assert_int_equal(launch_interface_xml(&q.ifc, &q.nic, &xml, &e), 0);
        assert_golden(xml, "launcher/hotplug-net1.xml");
        free(xml);
        /* a VF without an address, or not this interface's NIC */
        q.nic.kind = NIC_HOSTDEV;
        assert_true(launch_interface_xml(&q.ifc, &q.nic, &xml, &e) < 0);
        assert_string_equal(e.msg, "interface XML: NIC 'net1' needs a tap or a VF's PCI address");
        q.nic.kind = NIC_TAP;
        LaunchNic other = q.nic;
        other.name = "net2";
        assert_true(launch_interface_xml(&q.ifc, &other, &xml, &e) < 0);
        launch_attach_req_done(&q);
        json_decref(j);

        /* The boot interface through launch_interface_xml(): each of its lines is in the domain XML,
         * in the same order (one writer for both). */
        LaunchNic *nics = NULL;
        size_t n = 0;
        assert_int_equal(launch_nics_synthesize(v, NULL, &nics, &n), 0);
        char *dom = NULL;
        LaunchDomainOptions o = { .accel = LAUNCH_ACCEL_TCG };
        assert_int_equal(launch_domain_xml(v, nics, n, &o, NULL, &dom, &e), 0);
        assert_int_equal(launch_interface_xml(&v->interfaces[0], &nics[0], &xml, &e), 0);
        const char *at = dom;
        char *save = NULL;
        for (char *line = strtok_r(xml, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const char *hit = strstr(at, line);
                if (!hit)
                        fail_msg("boot domain XML lacks '%s' (in order)", line);
                at = hit + strlen(line);
        }
        free(xml);
        free(dom);
        free(nics);
        launch_vmi_free(v);
}

/* After a hot-plug the destination XML is libvirt's live XML with the per-VM files moved. */
static void test_migration_live_xml(void **state) {
        (void) state;
        LaunchVmi *v = load_ok(DATA "bridge-containerdisk.yaml"); /* state dir /run/kvnet/launcher/tenant-a_vm-bridge */
        const char *live =
                "<domain type='qemu'>\n"
                "  <serial type='file'><source path='/run/kvnet/launcher/tenant-a_vm-bridge/serial.log' append='on'/></serial>\n"
                "  <console type='file'><source path='/run/kvnet/launcher/tenant-a_vm-bridge/serial.log'/></console>\n"
                "  <disk type='file'><source file='/run/kvnet/launcher/tenant-a_vm-bridge/ci-cidata.iso'/></disk>\n"
                "  <disk type='file'><source file='/images/x/run/kvnet/launcher/tenant-a_vm-bridge/root.qcow2'/></disk>\n"
                "  <interface type='ethernet'><target dev='kvtap1' managed='no'/><alias name='ua-net1'/>"
                "<address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></interface>\n"
                "</domain>\n";
        char *xml = NULL;
        KvErr e = {};
        assert_int_equal(launch_migration_rewrite_live_xml(live, v, NULL, "/srv/b", NULL, &xml, &e), 0);
        assert_string_equal(xml,
                "<domain type='qemu'>\n"
                "  <serial type='file'><source path='/srv/b/tenant-a_vm-bridge/serial.log' append='on'/></serial>\n"
                "  <console type='file'><source path='/srv/b/tenant-a_vm-bridge/serial.log'/></console>\n"
                "  <disk type='file'><source file='/srv/b/tenant-a_vm-bridge/ci-cidata.iso'/></disk>\n"
                "  <disk type='file'><source file='/images/x/run/kvnet/launcher/tenant-a_vm-bridge/root.qcow2'/></disk>\n"
                "  <interface type='ethernet'><target dev='kvtap1' managed='no'/><alias name='ua-net1'/>"
                "<address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></interface>\n"
                "</domain>\n");
        free(xml);
        /* serial log alone (and a source log given with --serial-log) */
        const char *live2 = "<x><source path='/var/log/a&amp;b.log'/><source file='/run/kvnet/launcher/tenant-a_vm-bridge/c.iso'/></x>";
        assert_int_equal(launch_migration_rewrite_live_xml(live2, v, "/var/log/a&b.log", NULL, "/var/log/in.log", &xml, &e), 0);
        assert_string_equal(xml, "<x><source path='/var/log/in.log'/><source file='/run/kvnet/launcher/tenant-a_vm-bridge/c.iso'/></x>");
        free(xml);
        /* neither: libvirt keeps the source's XML */
        xml = (char *) "unchanged";
        assert_int_equal(launch_migration_rewrite_live_xml(live2, v, NULL, NULL, NULL, &xml, &e), 0);
        assert_null(xml);
        launch_vmi_free(v);
}

static void test_status_detaching(void **state) {
        (void) state;
        LaunchNic nics[2] = {
                { .name = "default", .kind = NIC_TAP, .tap = "kvtap0", .mac = { 2, 0, 0, 0, 0, 1 } },
                { .name = "net1", .kind = NIC_TAP, .tap = "kvtap1", .mtu = 1400, .mac = { 2, 0, 0, 0, 0, 2 },
                  .detaching = true },
        };
        snprintf(nics[0].detach_error, sizeof nics[0].detach_error, "the guest did not release the device");
        LaunchStatus st = { .phase = LAUNCH_PHASE_RUNNING, .nics = nics, .n_nics = 2, .domain = "d", .vmi = "n/d" };
        json_t *j = launch_status_to_json(&st);
        assert_non_null(j);
        char *ifs = json_dumps(json_object_get(j, "interfaces"), JSON_COMPACT);
        assert_string_equal(ifs,
                            "[{\"name\":\"default\",\"mac\":\"02:00:00:00:00:01\",\"tap\":\"kvtap0\","
                            "\"detachError\":\"the guest did not release the device\"},"
                            "{\"name\":\"net1\",\"mac\":\"02:00:00:00:00:02\",\"tap\":\"kvtap1\",\"mtu\":1400,"
                            "\"state\":\"detaching\"}]");
        free(ifs);
        json_decref(j);
}

/* ---------------------------------------------------------------- accel */

static void test_accel(void **state) {
        (void) state;
        LaunchAccelInfo a = launch_accel_detect_at("/nonexistent/kvm", "/proc/cpuinfo", NULL);
        assert_int_equal(a.accel, LAUNCH_ACCEL_TCG);
        assert_non_null(strstr(a.reason, "cannot open /nonexistent/kvm"));

        a = launch_accel_detect_at("/dev/kvm", "/proc/cpuinfo", "kvm");
        assert_int_equal(a.accel, LAUNCH_ACCEL_KVM);
        a = launch_accel_detect_at("/dev/kvm", "/proc/cpuinfo", "tcg");
        assert_int_equal(a.accel, LAUNCH_ACCEL_TCG);

        /* a cpuinfo without vmx/svm: TCG even when the device opens (/dev/null stands in) */
        char tmp[] = "/tmp/kvlaunch-cpuinfo.XXXXXX";
        int fd = mkstemp(tmp);
        assert_true(fd >= 0);
        const char *ci = "processor\t: 0\nflags\t\t: fpu vme sse2 vmxx hypervisor\n";
        assert_int_equal(write(fd, ci, strlen(ci)), (ssize_t) strlen(ci));
        close(fd);
        a = launch_accel_detect_at("/dev/null", tmp, NULL);
        assert_int_equal(a.accel, LAUNCH_ACCEL_TCG);
        assert_non_null(strstr(a.reason, "no vmx/svm flag"));
        /* with vmx, /dev/null fails the KVM ioctls */
        fd = open(tmp, O_WRONLY | O_TRUNC);
        const char *ci2 = "flags\t\t: fpu vmx sse2\n";
        assert_int_equal(write(fd, ci2, strlen(ci2)), (ssize_t) strlen(ci2));
        close(fd);
        a = launch_accel_detect_at("/dev/null", tmp, NULL);
        assert_int_equal(a.accel, LAUNCH_ACCEL_TCG);
        assert_non_null(strstr(a.reason, "KVM_GET_API_VERSION"));
        unlink(tmp);

        /* this machine: no VT flags, so TCG (unless someone forced KVNET_ACCEL) */
        if (!getenv("KVNET_ACCEL")) {
                a = launch_accel_detect();
                assert_int_equal(a.accel, LAUNCH_ACCEL_TCG);
                assert_true(strstr(a.reason, "using TCG") != NULL);
                print_message("accel here: %s\n", a.reason);
        }
}

/* ---------------------------------------------------------------- the binary */

static const char files_vmi[] =
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: f\n  uid: u-1\n"
        "spec:\n  domain:\n    memory:\n      guest: 128Mi\n    devices:\n      disks:\n"
        "        - name: ci\n          disk: {bus: virtio}\n        - name: scratch\n          disk: {bus: virtio}\n"
        "  volumes:\n    - name: ci\n      cloudInitNoCloud:\n        userData: \"#cloud-config\\n\"\n"
        "        networkData: \"version: 2\\n\"\n"
        "    - name: scratch\n      emptyDisk:\n        capacity: 1Mi\n";

static bool exists(const char *dir, const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        return access(p, F_OK) == 0;
}

static void touch(const char *dir, const char *rel, const char *data) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, rel);
        assert_int_equal(write_file_atomic(p, data, strlen(data), false), 0);
}

static LaunchVmi *files_vmi_in(const char *state_dir) {
        LaunchOptions o = { .state_dir = state_dir };
        LaunchVmi *v = NULL;
        KvErr e = {};
        if (launch_vmi_parse_text(files_vmi, strlen(files_vmi), "files", &o, &v, &e) < 0)
                fail_msg("%s", e.msg);
        return v;
}

/* The launcher removes exactly what it made: its files, its dirs when empty, never anything else. */
static void test_files_own_and_remove(void **state) {
        (void) state;
        if (access("/usr/bin/genisoimage", X_OK) < 0 && access("/usr/bin/mkisofs", X_OK) < 0 &&
            access("/usr/bin/xorrisofs", X_OK) < 0)
                skip_because("no genisoimage, mkisofs or xorrisofs in /usr/bin");
        char base[] = "/tmp/kvlaunch-files.XXXXXX";
        assert_non_null(mkdtemp(base));
        LaunchVmi *v = files_vmi_in(base);
        LaunchFiles f = {};
        KvErr e = {};
        assert_int_equal(launch_prepare_files(v, &f, &e), 0);
        const char *const made[] = { "ci-cidata", "ci-cidata/meta-data", "ci-cidata/user-data",
                                     "ci-cidata/network-config", "ci-cidata.iso", "scratch-empty.raw" };
        assert_int_equal(f.n, ELEMENTSOF(made));
        for (size_t i = 0; i < ELEMENTSOF(made); i++) {
                char want[512];
                snprintf(want, sizeof want, "%s/%s", v->state_dir, made[i]);
                assert_string_equal(f.items[i].path, want);
                assert_int_equal(f.items[i].dir, i == 0);
                assert_true(exists(v->state_dir, made[i]));
        }
        /* others' files next to ours: the status file, something in the staging dir */
        touch(v->state_dir, "status.json", "{}\n");
        touch(v->state_dir, "ci-cidata/foreign", "x");
        assert_int_equal(launch_files_remove(&f), -ENOTEMPTY);
        assert_int_equal(f.n, 1); /* the staging dir, not empty: kept and reported */
        assert_true(f.items[0].dir);
        for (size_t i = 1; i < ELEMENTSOF(made); i++)
                assert_false(exists(v->state_dir, made[i]));
        assert_true(exists(v->state_dir, "ci-cidata/foreign"));
        assert_true(exists(v->state_dir, "status.json"));
        launch_files_clear(&f);
        /* a second run: the staging dir existed, so it is not ours; an existing emptyDisk keeps its data */
        touch(v->state_dir, "scratch-empty.raw", "keep me");
        assert_int_equal(launch_prepare_files(v, &f, &e), 0);
        assert_int_equal(f.n, 4); /* meta-data, user-data, network-config, ISO */
        for (size_t i = 0; i < f.n; i++)
                assert_false(f.items[i].dir);
        char p[512], *text = NULL;
        snprintf(p, sizeof p, "%s/scratch-empty.raw", v->state_dir);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_size, 1 << 20); /* grown to the capacity */
        assert_int_equal(read_file_max(p, 2 << 20, &text, NULL), 0);
        assert_int_equal(memcmp(text, "keep me", 7), 0);
        free(text);
        assert_int_equal(launch_files_remove(&f), 0);
        assert_int_equal(f.n, 0);
        assert_true(exists(v->state_dir, "scratch-empty.raw"));
        assert_true(exists(v->state_dir, "ci-cidata/foreign"));
        assert_false(exists(v->state_dir, "ci-cidata.iso"));
        assert_false(exists(v->state_dir, "ci-cidata/meta-data"));
        launch_files_clear(&f);

        /* a failure rolls back what was made so far and leaves *ret untouched */
        snprintf(p, sizeof p, "%s/ci-cidata/foreign", v->state_dir);
        assert_int_equal(unlink(p), 0);
        snprintf(p, sizeof p, "%s/ci-cidata", v->state_dir);
        assert_int_equal(rmdir(p), 0);
        snprintf(p, sizeof p, "%s/scratch-empty.raw", v->state_dir);
        assert_int_equal(unlink(p), 0);
        snprintf(p, sizeof p, "%s/ci-cidata.iso", v->state_dir);
        assert_int_equal(mkdir(p, 0700), 0); /* the ISO tool cannot write over a directory */
        f.n = 99;
        assert_true(launch_prepare_files(v, &f, &e) < 0);
        assert_int_equal(f.n, 99);
        if (!strstr(e.msg, "volume 'ci'"))
                fail_msg("error does not name the volume: %s", e.msg);
        assert_false(exists(v->state_dir, "ci-cidata"));
        assert_true(exists(v->state_dir, "ci-cidata.iso")); /* a directory: unlink() leaves it */
        assert_int_equal(rmdir(p), 0);
        snprintf(p, sizeof p, "%s/status.json", v->state_dir);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(rmdir(v->state_dir), 0); /* nothing else was left anywhere */
        assert_int_equal(rmdir(base), 0);
        launch_vmi_free(v);
}

static void test_dry_run_binary(void **state) {
        (void) state;
        const char *build = getenv("KVNET_BUILD") ? getenv("KVNET_BUILD") : "build";
        char bin[512], cmd[1024];
        snprintf(bin, sizeof bin, "%s/bin/kvnet-launcher", build);
        if (access(bin, X_OK) < 0)
                skip_because("%s: %m (make all first)", bin);
        snprintf(cmd, sizeof cmd,
                 "KVNET_ACCEL=tcg %s --dry-run - --image-dir " DATA "images --state-dir /run/kvnet/launcher < " DATA
                 "multus-vm.yaml 2>/dev/null | cmp -s - " DATA "multus-vm.xml",
                 bin);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s --dry-run " DATA "bad/pvc.yaml 2>&1 >/dev/null | grep -q 'spec.volumes\\[1\\].persistentVolumeClaim'", bin);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s --run x >/dev/null 2>&1", bin);
        int st = system(cmd);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

/* Image references: the OCI grammar, normalised as a runtime does; host paths and ".." refused. */
static void test_image_refs(void **state) {
        (void) state;
        static const struct {
                const char *in, *canonical;
        } good[] = {
                { "cirros", "docker.io/library/cirros:latest" },
                { "kubevirt/cirros:v1", "docker.io/kubevirt/cirros:v1" },
                { "quay.io/kubevirt/cirros-container-disk-demo:v1.2.0", "quay.io/kubevirt/cirros-container-disk-demo:v1.2.0" },
                { "localhost:5000/a/b_c__d.e-f", "localhost:5000/a/b_c__d.e-f:latest" },
                { "kvnet.local/demo-guest:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                  "kvnet.local/demo-guest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                LaunchImageRef r;
                KvErr e = {};
                if (launch_image_ref_parse(good[i].in, &r, &e) < 0)
                        fail_msg("%s: %s", good[i].in, e.msg);
                assert_string_equal(r.canonical, good[i].canonical);
        }
        static const struct {
                const char *in, *needle;
        } bad[] = {
                { "", "must not be empty" },
                { "/var/lib/kvnet/images/x.qcow2", "is a host path" },
                { "quay.io/../../etc", "is a host path" },
                { "quay.io/Upper/x", "invalid repository component 'Upper'" },
                { "quay.io/a//b", "invalid repository component ''" },
                { "a/.hidden", "invalid repository component '.hidden'" },
                { "x:-tag", "invalid tag '-tag'" },
                { "x@sha256:abc", "the digest must be sha256: and 64" },
                { "x@md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "the digest must be sha256" },
                { "bad_host.io:99999999/x", "invalid registry" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                LaunchImageRef r;
                KvErr e = {};
                if (launch_image_ref_parse(bad[i].in, &r, &e) != -EINVAL || !strstr(e.msg, bad[i].needle))
                        fail_msg("case %zu '%s': '%s' lacks '%s'", i, bad[i].in, e.msg, bad[i].needle);
        }
}

static void write_text(const char *path, const char *text) {
        assert_int_equal(write_file_atomic(path, text, strlen(text), false), 0);
}

/* Paths inside an image resolve below the store only: no "..", no symlink anywhere, regular files. */
static void test_image_paths(void **state) {
        (void) state;
        char store[] = "/tmp/kvnet-images-XXXXXX", p[PATH_MAX], outside[PATH_MAX + 16];
        assert_non_null(mkdtemp(store));
        snprintf(outside, sizeof outside, "%s-secret", store);
        write_text(outside, "secret\n");
        LaunchImageRef r, other;
        KvErr e = {};
        char *path = NULL;
        assert_int_equal(launch_image_ref_parse("kvnet.local/demo-guest", &r, &e), 0);
        assert_int_equal(launch_image_ref_parse("kvnet.local/other:v1", &other, &e), 0);
        /* missing image: the error names the reference and the store */
        assert_int_equal(launch_image_file(store, &r, "/boot/vmlinuz", &path, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "image 'kvnet.local/demo-guest:latest' is not in the image store"));
        snprintf(p, sizeof p, "%s/kvnet.local/demo-guest:latest/boot", store);
        assert_int_equal(mkdir_p(p, 0755), 0);
        snprintf(p, sizeof p, "%s/kvnet.local/demo-guest:latest/boot/vmlinuz", store);
        write_text(p, "kernel\n");
        e = (KvErr){};
        assert_int_equal(launch_image_file(store, &r, "/boot/vmlinuz", &path, &e), 0);
        assert_string_equal(path, p);
        free(path);
        path = NULL;
        /* a missing file names the image and the path */
        e = (KvErr){};
        assert_int_equal(launch_image_file(store, &r, "/boot/initrd.img", &path, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "image 'kvnet.local/demo-guest:latest' has no '/boot/initrd.img'"));
        /* escapes: "..", a relative path, a directory */
        static const char *const escapes[] = { "/boot/../../../other:v1/x", "boot/vmlinuz", "/boot/./vmlinuz", "/boot" };
        for (size_t i = 0; i < ELEMENTSOF(escapes); i++) {
                e = (KvErr){};
                assert_true(launch_image_file(store, &r, escapes[i], &path, &e) < 0);
                assert_null(path);
        }
        /* a symlink inside the image, to a file outside the store: refused, named */
        snprintf(p, sizeof p, "%s/kvnet.local/demo-guest:latest/boot/initrd.img", store);
        assert_int_equal(symlink(outside, p), 0);
        e = (KvErr){};
        assert_int_equal(launch_image_file(store, &r, "/boot/initrd.img", &path, &e), -EACCES);
        assert_non_null(strstr(e.msg, "goes through a symlink"));
        /* a symlinked directory on the way (the image's own directory): refused too */
        snprintf(p, sizeof p, "%s/kvnet.local/demo-guest:latest", store);
        char target[PATH_MAX + 8];
        snprintf(target, sizeof target, "%s/kvnet.local/other:v1", store);
        assert_int_equal(symlink(p, target), 0);
        e = (KvErr){};
        assert_int_equal(launch_image_file(store, &other, "/boot/vmlinuz", &path, &e), -EACCES);
        assert_non_null(strstr(e.msg, "goes through a symlink"));
        /* containerDisk: the one file of disk/ */
        e = (KvErr){};
        assert_int_equal(launch_image_disk(store, &r, &path, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "has no disk/"));
        assert_int_equal(launch_image_add(store, "kvnet.local/disk:1", outside, NULL, NULL, false, &e), 0);
        LaunchImageRef d;
        assert_int_equal(launch_image_ref_parse("kvnet.local/disk:1", &d, &e), 0);
        assert_int_equal(launch_image_disk(store, &d, &path, &e), 0);
        assert_non_null(strstr(path, "/kvnet.local/disk:1/disk/"));
        free(path);
        path = NULL;

        /* the parse: a manifest's kernelBoot resolves in the store, and nothing outside it */
        LaunchOptions o = { .image_dir = store, .state_dir = "/run/kvnet/launcher", .require_files = true };
        static const char vmi[] = "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: a}\n"
                                  "spec: {domain: {memory: {guest: 64Mi}, firmware: {kernelBoot: {container: "
                                  "{image: kvnet.local/demo-guest, kernelPath: /boot/vmlinuz, initrdPath: /boot/initrd.img}}}}}\n";
        LaunchVmi *v = NULL;
        e = (KvErr){};
        assert_true(launch_vmi_parse_text(vmi, strlen(vmi), "inline", &o, &v, &e) < 0);
        assert_non_null(strstr(e.msg, "spec.domain.firmware.kernelBoot.container.initrdPath: image 'kvnet.local/demo-guest:latest': '/boot/initrd.img' goes through a symlink"));
        assert_null(v);
        snprintf(p, sizeof p, "%s/kvnet.local/demo-guest:latest/boot/initrd.img", store);
        assert_int_equal(unlink(p), 0);
        write_text(p, "initrd\n");
        e = (KvErr){};
        assert_int_equal(launch_vmi_parse_text(vmi, strlen(vmi), "inline", &o, &v, &e), 0);
        assert_string_equal(v->initrd_path, p);
        launch_vmi_free(v);
        /* parse-only (the controller): nothing is opened, the syntax is still checked */
        o = (LaunchOptions){ .image_dir = "/nonexistent", .parse_only = true };
        v = NULL;
        assert_int_equal(launch_vmi_parse_text(vmi, strlen(vmi), "inline", &o, &v, &e), 0);
        launch_vmi_free(v);
        assert_int_equal(unlink(outside), 0);
        assert_int_equal(tmpdir_remove(store), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_image_refs),        cmocka_unit_test(test_image_paths),
                cmocka_unit_test(test_quantity),          cmocka_unit_test(test_mac_pci),
                cmocka_unit_test(test_yaml_types),        cmocka_unit_test(test_yaml_json_same),
                cmocka_unit_test(test_parse_details),     cmocka_unit_test(test_unknown_field_warns),
                cmocka_unit_test(test_rejects),           cmocka_unit_test(test_inline_rejects),
                cmocka_unit_test(test_multi_doc_one_vmi),
                cmocka_unit_test(test_interface_absent), cmocka_unit_test(test_golden_bridge),
                cmocka_unit_test(test_golden_masquerade), cmocka_unit_test(test_golden_sriov),
                cmocka_unit_test(test_golden_kernelboot), cmocka_unit_test(test_golden_multus),
                cmocka_unit_test(test_domain_details),    cmocka_unit_test(test_accel),
                cmocka_unit_test(test_dry_run_binary),    cmocka_unit_test(test_files_own_and_remove),
                cmocka_unit_test(test_kind_tables),
                cmocka_unit_test(test_hotplug_attach_parse), cmocka_unit_test(test_hotplug_detach_parse),
                cmocka_unit_test(test_hotplug_roundtrip),
                cmocka_unit_test(test_hotplug_xml),          cmocka_unit_test(test_status_detaching),
                cmocka_unit_test(test_migration_live_xml),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
