/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: a KubeVirt kubevirt.io/v1 VirtualMachineInstance (or a VirtualMachine's
 * spec.template) -> typed LaunchVmi -> libvirt domain XML.
 *
 * Input (YAML or JSON, both through libyaml) is parsed in one place (launch_vmi_parse*) into a
 * LaunchVmi that is fully checked: types, ranges, enum values and cross references. Fields:
 *   - supported: mapped into the struct;
 *   - known but unsupported (gpus, livenessProbe, dataVolume, macvtap, ...): error naming the path,
 *     "spec.volumes[1].persistentVolumeClaim: not supported by kvnet-launcher";
 *   - known and harmless (rng, machine.type, autoattachGraphicsDevice, ...) and anything unknown:
 *     a warning in vmi->warnings (the CLI prints them to stderr). Nothing is dropped silently.
 *
 * Local conventions (kvnet has no container runtime for disks):
 *   - containerDisk.image and kernelBoot.container.image are OCI references resolved in the local
 *     image store (--image-dir, launcher/vmi/images.c, docs/images.md): the disk is the one file in
 *     the image's disk/, kernelPath/initrdPath are paths inside the image. Host paths are refused
 *     unless LaunchOptions.allow_host_paths (--allow-host-paths).
 *   - cloudInitNoCloud: the cidata files (meta-data, user-data, network-config) are produced in
 *     the struct; the runtime writes them (launch_cloudinit_write_files) and builds the seed ISO at
 *     disk->path (<state-dir>/<volume>-cidata.iso).
 *   - emptyDisk: a raw sparse file at <state-dir>/<volume>-empty.raw, created by the runtime.
 *   - kernelBoot without an image: kernelPath / initrdPath are host paths (allow_host_paths only).
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "common/kverr.h"
#include "common/util.h"

#define LAUNCH_DEFAULT_IMAGE_DIR "/var/lib/kvnet/images"
#define LAUNCH_DEFAULT_STATE_DIR "/run/kvnet/launcher" /* + "/<namespace>_<name>" */
#define LAUNCH_MAX_INPUT (4u * 1024 * 1024)

/* ------------------------------------------------------------------ warnings */

typedef struct LaunchWarnings {
        char **items;
        size_t n, cap;
} LaunchWarnings;

int launch_warnings_add(LaunchWarnings *w, const char *fmt, ...) _printf_(2, 3);
int launch_warnings_addv(LaunchWarnings *w, const char *fmt, va_list ap) _printf_(2, 0);
void launch_warnings_clear(LaunchWarnings *w);

/* ------------------------------------------------------------------ typed VMI */

typedef enum LaunchDiskBus {
        LAUNCH_BUS_VIRTIO,
        LAUNCH_BUS_SATA,
        LAUNCH_BUS_SCSI,
} LaunchDiskBus;

typedef enum LaunchDiskDevice {
        LAUNCH_DEVICE_DISK,
        LAUNCH_DEVICE_CDROM,
} LaunchDiskDevice;

typedef enum LaunchVolumeKind {
        LAUNCH_VOLUME_CONTAINER_DISK,
        LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD,
        LAUNCH_VOLUME_EMPTY_DISK,
} LaunchVolumeKind;

typedef enum LaunchImageFormat {
        LAUNCH_FORMAT_RAW,
        LAUNCH_FORMAT_QCOW2,
} LaunchImageFormat;

typedef struct LaunchCloudInit {
        char *meta_data;      /* instance-id + local-hostname */
        char *user_data;      /* decoded; NULL if none */
        char *network_config; /* decoded; NULL if none */
} LaunchCloudInit;

/* One spec.domain.devices.disks entry joined with its spec.volumes entry (same name). */
typedef struct LaunchDisk {
        char *name;
        LaunchDiskDevice device;
        LaunchDiskBus bus;
        bool readonly;
        uint32_t boot_order; /* 0 = none */
        char *serial;        /* NULL = none */
        char pci_address[16];  /* guest PCI address "0000:00:0a.0", "" = libvirt picks */
        LaunchVolumeKind kind;
        char *image;         /* containerDisk.image as written */
        char *path;          /* resolved host path (image, seed ISO or empty disk) */
        LaunchImageFormat format;
        uint64_t capacity;   /* emptyDisk, bytes */
        LaunchCloudInit cloud_init;
} LaunchDisk;

typedef enum LaunchBinding {
        LAUNCH_BINDING_BRIDGE,
        LAUNCH_BINDING_MASQUERADE,
        LAUNCH_BINDING_SRIOV,
} LaunchBinding;

typedef enum LaunchProtocol {
        LAUNCH_PROTO_TCP,
        LAUNCH_PROTO_UDP,
} LaunchProtocol;

typedef struct LaunchPort {
        char *name; /* NULL = unnamed */
        uint16_t port;
        LaunchProtocol protocol;
} LaunchPort;

typedef struct LaunchInterface {
        char *name;
        LaunchBinding binding;
        LaunchPort *ports;
        size_t n_ports;
        bool has_mac;
        uint8_t mac[6];
        char model[16];       /* virtio (default), e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet */
        char pci_address[16]; /* guest PCI address, "" = libvirt picks */
        uint32_t boot_order;  /* 0 = none */
        size_t network;       /* index into LaunchVmi.networks */
} LaunchInterface;

typedef enum LaunchNetworkKind {
        LAUNCH_NET_POD,
        LAUNCH_NET_MULTUS,
} LaunchNetworkKind;

typedef struct LaunchNetwork {
        char *name;
        LaunchNetworkKind kind;
        char *multus_network_name; /* "ns/name" or "name" */
        bool multus_default;
} LaunchNetwork;

typedef struct LaunchKV {
        char *key;
        char *value;
} LaunchKV;

typedef struct LaunchVmi {
        char *name;
        char *namespace; /* "default" if absent */
        char *uid;       /* NULL if absent */
        LaunchKV *labels;
        size_t n_labels;
        LaunchKV *annotations;
        size_t n_annotations;
        char *networks_annotation; /* k8s.v1.cni.cncf.io/networks, raw; NULL if absent */

        uint32_t sockets, cores, threads; /* each >= 1 */
        char *cpu_model;                  /* NULL = default (host-model under KVM) */
        uint64_t memory;                  /* bytes */
        char *firmware_uuid;              /* spec.domain.firmware.uuid, NULL if absent */

        bool kernel_boot;
        char *kernel_path, *initrd_path, *kernel_args;

        LaunchDisk *disks;
        size_t n_disks;
        LaunchInterface *interfaces;
        size_t n_interfaces;
        LaunchNetwork *networks;
        size_t n_networks;

        int64_t termination_grace_seconds; /* default 30 */
        char *hostname;                    /* spec.hostname, else metadata.name */
        char *subdomain;                   /* NULL if absent */

        char *state_dir; /* <state-dir>/<namespace>_<name> */
        LaunchWarnings warnings;
} LaunchVmi;

typedef struct LaunchOptions {
        const char *image_dir; /* NULL = LAUNCH_DEFAULT_IMAGE_DIR */
        const char *state_dir; /* NULL = LAUNCH_DEFAULT_STATE_DIR */
        /* false (dry-run): a missing image is a warning, its format guessed from the name;
         * true: a missing image or kernel is an error. */
        bool require_files;
        /* true: nothing on this machine is looked at (no image, kernel or directory is opened): the
         * manifest is checked as written, as kvnet-controller does at create and update to refuse what the
         * launcher would refuse. Takes precedence over require_files. */
        bool parse_only;
        /* true: containerDisk.image may be an absolute host path, and kernelBoot without an image takes
         * host paths (the old convention, for tests that boot a kernel from anywhere); false (default): a
         * manifest reads nothing outside the image store, and such fields are refused, named. */
        bool allow_host_paths;
} LaunchOptions;

/* ------------------------------------------------------------------ image store (launcher/vmi/images.c) */

/* An OCI image reference, normalised as a container runtime does: "cirros" is
 * docker.io/library/cirros:latest. */
typedef struct LaunchImageRef {
        char name[256];      /* registry/repository */
        char tag[129];       /* "" with a digest */
        char digest[72];     /* "sha256:<64 hex>" or "" */
        char canonical[400]; /* name:tag or name@digest: the image's directory below the store */
} LaunchImageRef;

/* Checks the grammar (registry/repository[:tag][@sha256:digest]); a host path, "..", an invalid component,
 * tag or digest is -EINVAL with the reason. */
int launch_image_ref_parse(const char *ref, LaunchImageRef *ret, KvErr *e) _wur_;
/* <store>/<canonical> (store NULL: LAUNCH_DEFAULT_IMAGE_DIR); NULL when out of memory. Caller frees. */
char *launch_image_dir(const char *store, const LaunchImageRef *r);
/* The host path of `inside` (an absolute path inside the image): every component below the store is opened
 * with O_NOFOLLOW ("..", "." and symlinks refused) and the file must be a regular one. -ENOENT for a missing
 * image or file, naming the reference. Caller frees *ret. */
int launch_image_file(const char *store, const LaunchImageRef *r, const char *inside, char **ret, KvErr *e) _wur_;
/* A containerDisk image's disk: the one regular file in its disk/. */
int launch_image_disk(const char *store, const LaunchImageRef *r, char **ret, KvErr *e) _wur_;
/* Adds an image (launcher/images.c): copies disk into <image>/disk/, kernel to /boot/vmlinuz and initrd to
 * /boot/initrd.img (each may be NULL, not all), made in a temporary directory and renamed into place; an
 * existing image is replaced only with replace. */
int launch_image_add(const char *store, const char *ref, const char *disk, const char *kernel, const char *initrd,
                     bool replace, KvErr *e) _wur_;

/* Parses a VMI (or VirtualMachine) object. Never keeps a reference to 'root'. */
int launch_vmi_parse_json(json_t *root, const LaunchOptions *o, LaunchVmi **ret, KvErr *e) _wur_;
/* YAML or JSON text; multi-document input is accepted only if exactly one document is a
 * VirtualMachineInstance/VirtualMachine. 'what' names the input in errors (file name). */
int launch_vmi_parse_text(const char *text, size_t len, const char *what, const LaunchOptions *o, LaunchVmi **ret,
                          KvErr *e) _wur_;
/* path "-" reads stdin. */
int launch_vmi_load(const char *path, const LaunchOptions *o, LaunchVmi **ret, KvErr *e) _wur_;
LaunchVmi *launch_vmi_free(LaunchVmi *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(LaunchVmi *, launch_vmi_free);
#define _cleanup_launch_vmi_ _cleanup_(launch_vmi_freep)

/* The VM's own directory under a launcher state dir (NULL = LAUNCH_DEFAULT_STATE_DIR):
 * <state_dir>/<namespace>_<name>. Caller frees; NULL when out of memory. */
char *launch_vmi_dir(const char *state_dir, const LaunchVmi *v);
/* The file the launcher makes for a volume inside a VM directory: <vm_dir>/<volume>-cidata.iso
 * (cloudInitNoCloud), <vm_dir>/<volume>-empty.raw (emptyDisk). NULL for other kinds (their path is
 * the image's own) and when out of memory. Caller frees. */
char *launch_volume_file(const char *vm_dir, const LaunchDisk *d);

/* "libvirt name" of the domain: <namespace>_<name>. Caller frees. */
char *launch_domain_name(const LaunchVmi *v);

/* Kubernetes quantity ("128Mi", "1Gi", "512M", "1.5Gi", "1e9", "1000") -> bytes, exactly:
 * a non-integral byte count, overflow or garbage is -EINVAL/-ERANGE. */
int launch_parse_quantity(const char *s, uint64_t *ret) _wur_;
/* "02:00:00:00:00:01" (or '-' separated); rejects multicast. */
int launch_parse_mac(const char *s, uint8_t ret[6]) _wur_;
/* "0000:3b:02.1" -> parts; domain<=0xffff, bus<=0xff, slot<=0x1f, function<=7. */
int launch_parse_pci(const char *s, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot,
                     unsigned *ret_function) _wur_;

/* Writes meta-data, user-data (if any; else "#cloud-config\n"), network-config (if any) into dir. */
int launch_cloudinit_write_files(const LaunchDisk *d, const char *dir) _wur_;

/* ------------------------------------------------------------------ YAML */

/* Parses YAML (1.2 core schema subset; JSON is accepted too) into a JSON array of documents
 * (empty documents are skipped). Aliases, merge keys and duplicate keys are rejected; errors
 * carry "what:LINE:COL". Plain scalars: null/~/"" -> null, true/false, decimal/0x/0o integers,
 * floats, everything else string; quoted scalars and !!str are strings. */
int launch_yaml_parse(const char *text, size_t len, const char *what, json_t **ret_docs, KvErr *e) _wur_;

/* ------------------------------------------------------------------ acceleration */

typedef enum LaunchAccel {
        LAUNCH_ACCEL_TCG,
        LAUNCH_ACCEL_KVM,
} LaunchAccel;

typedef struct LaunchAccelInfo {
        LaunchAccel accel;
        char reason[256];
} LaunchAccelInfo;

/* KVM iff /dev/kvm opens, /proc/cpuinfo has vmx|svm, KVM_GET_API_VERSION == 12 and
 * KVM_CREATE_VM succeeds; else TCG with the reason. KVNET_ACCEL=tcg|kvm overrides. */
LaunchAccelInfo launch_accel_detect(void);
/* Same, with the device, cpuinfo path and env value injectable (tests). env may be NULL. */
LaunchAccelInfo launch_accel_detect_at(const char *dev_kvm, const char *cpuinfo, const char *env);
const char *launch_accel_to_string(LaunchAccel a); /* "kvm" | "qemu" (libvirt domain type) */

/* ------------------------------------------------------------------ NICs + domain XML */

typedef enum LaunchNicKind {
        NIC_TAP,
        NIC_HOSTDEV,
} LaunchNicKind;

/* What CNI/netd prepared for one VMI interface (same order as vmi->interfaces). */
typedef struct LaunchNic {
        const char *name; /* the VMI interface name */
        LaunchNicKind kind;
        char tap[16];     /* NIC_TAP */
        char pci[16];     /* NIC_HOSTDEV: host VF, "0000:3b:02.1" */
        uint8_t mac[6];
        uint32_t mtu;     /* 0 = not set */
        /* --run only (status): detach-interface was sent and the guest has not released the device
         * yet; and why the last detach of this NIC failed ("" = none). */
        bool detaching;
        char detach_error[160];
} LaunchNic;

/* Dry-run stand-ins: taps "tap0", "tap1", ... in interface order (hostdevs consume no number),
 * MAC = macAddress or 02:xx:xx:xx:xx:xx from a hash of namespace/name/interface, mtu 0,
 * sriov: pci "0000:00:00.0" placeholder (a warning is added to w). Caller frees *ret. */
int launch_nics_synthesize(const LaunchVmi *v, LaunchWarnings *w, LaunchNic **ret, size_t *ret_n) _wur_;

typedef struct LaunchDomainOptions {
        LaunchAccel accel;
        const char *serial_log; /* NULL = <vm dir>/serial.log */
        /* The VM directory whose files the domain uses (serial log, seed ISOs, empty disks); NULL =
         * v->state_dir. A migration's destination XML names the target launcher's directory. */
        const char *vm_dir;
} LaunchDomainOptions;

/* Builds the domain XML; nics[i] belongs to v->interfaces[i] (names must match). Warnings
 * (e.g. host-passthrough under TCG) go to w (may be NULL). Caller frees *ret. */
int launch_domain_xml(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchDomainOptions *o,
                      LaunchWarnings *w, char **ret, KvErr *e) _wur_;

/* ------------------------------------------------------------------ NIC hot-plug requests (launcher/hotplug.c) */

/* {"op":"attach-interface","args":{"name","tap","mac","model","mtu"}} checked: name 1..63 of
 * [A-Za-z0-9_-] (libvirt's user alias ua-<name>), tap 1..15 characters of a valid interface name, mac
 * a unicast MAC (default: the one the launcher derives for a VMI interface of that name, as for
 * one without macAddress), model one launch_nic_model_known() accepts (default virtio), mtu
 * 68..65535 (optional). Unknown keys are errors; errors name the field and the value. */
typedef struct LaunchAttachReq {
        LaunchInterface ifc; /* name (owned), model, binding bridge; no boot order, no PCI address */
        LaunchNic nic;       /* NIC_TAP; nic.name == ifc.name */
} LaunchAttachReq;

int launch_attach_req_parse(json_t *args, const LaunchVmi *v, LaunchAttachReq *ret, KvErr *e) _wur_;
void launch_attach_req_done(LaunchAttachReq *r);

/* {"op":"detach-interface","args":{"name"}}: the same name rules. */
typedef struct LaunchDetachReq {
        char *name;
} LaunchDetachReq;

int launch_detach_req_parse(json_t *args, LaunchDetachReq *ret, KvErr *e) _wur_;
void launch_detach_req_done(LaunchDetachReq *r);

/* The whole request line's object, {"op":"attach-interface","args":{...}} (mac always, model
 * always, mtu when set): what the node side sends to the launcher's socket. NULL on ENOMEM. */
json_t *launch_attach_req_to_json(const LaunchAttachReq *r);
/* {"op":"detach-interface","args":{"name"}}. NULL on ENOMEM. */
json_t *launch_detach_req_to_json(const LaunchDetachReq *r);

/* ------------------------------------------------------------------ live migration (launcher/migration.c) */

/* Refuses a VMI whose storage cannot follow a live migration: an emptyDisk is a writable file local
 * to the node and kvnet does not do block migration. The error names the volume; ctx prefixes it
 * ("migrate", "--incoming"). -EOPNOTSUPP. */
int launch_migration_check_storage(const LaunchVmi *v, const char *ctx, KvErr *e) _wur_;
/* QEMU before 9.0 loses guest stores while it live-migrates a TCG guest (upstream fix 03bfc2188f;
 * docs/migration.md, "QEMU under TCG"). For a migratable VM under TCG on such a QEMU (qemu_version as
 * virConnectGetVersion() gives it: major * 1000000 + minor * 1000 + micro) returns the warning to
 * log; NULL otherwise (KVM, QEMU >= 9.0, version unknown = 0). Static storage. */
const char *launch_migration_tcg_warning(LaunchAccel accel, unsigned long qemu_version);
/* The destination domain XML (VIR_MIGRATE_PARAM_DEST_XML): the XML this launcher started, with the
 * per-VM files of the target launcher: dest_state_dir is its --state-dir (serial log and seed ISOs
 * under <dest_state_dir>/<ns>_<name>/), dest_serial_log overrides the serial log. Both NULL: *ret
 * = NULL (libvirt keeps the source XML). Caller frees *ret. */
int launch_migration_dest_xml(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, LaunchAccel accel,
                              const char *dest_state_dir, const char *dest_serial_log, char **ret, KvErr *e) _wur_;

/* After a NIC hot-plug or unplug: the destination XML from libvirt's live (migratable) XML of the
 * domain, with the same per-VM file moves as launch_migration_dest_xml(): src_serial_log (NULL =
 * <v->state_dir>/serial.log) becomes dest_serial_log (NULL = <dest_state_dir>/<ns>_<name>/serial.log),
 * and every other path under v->state_dir/ moves to <dest_state_dir>/<ns>_<name>/. Only whole
 * attribute values (serial log) or value prefixes (directory) are replaced. Both dest NULL: *ret =
 * NULL. Caller frees *ret. */
int launch_migration_rewrite_live_xml(const char *live_xml, const LaunchVmi *v, const char *src_serial_log,
                                      const char *dest_state_dir, const char *dest_serial_log, char **ret,
                                      KvErr *e) _wur_;

/* ================================================================== runtime (launcher/runtime/):
 * --run keeps one VMI's libvirt domain alive and reports its phase. */

#include <sys/types.h>

/* Exit codes of `kvnet-launcher --run` (docs/launcher.md). */
enum {
        LAUNCH_EXIT_OK = 0,        /* the guest powered off (by itself or after our ACPI request) */
        LAUNCH_EXIT_INVALID = 1,   /* invalid VMI / missing file: nothing was started */
        LAUNCH_EXIT_USAGE = 2,     /* bad command line */
        LAUNCH_EXIT_LIBVIRT = 3,   /* could not connect / start the domain: nothing left running */
        LAUNCH_EXIT_VM_FAILED = 4, /* the domain ended Failed: crashed, destroyed (also after the grace period) */
        LAUNCH_EXIT_CONN_LOST = 5, /* libvirt connection lost; the domain's state is unknown */
        LAUNCH_EXIT_INTERNAL = 6,  /* local error (state dir, socket, event loop) */
        LAUNCH_EXIT_NO_MIGRATION = 7, /* --incoming: the migration failed / did not arrive in time; nothing runs */
};

typedef enum LaunchPhase {
        LAUNCH_PHASE_SCHEDULED,
        LAUNCH_PHASE_RUNNING,
        LAUNCH_PHASE_SUCCEEDED,
        LAUNCH_PHASE_FAILED,
        LAUNCH_PHASE_WAITING_FOR_MIGRATION, /* --incoming: waiting for the domain to arrive */
        LAUNCH_PHASE_MIGRATED,              /* the domain live-migrated away (exit 0) */
} LaunchPhase;

typedef enum LaunchMigrationState {
        LAUNCH_MIG_NONE,
        LAUNCH_MIG_PENDING,   /* target: waiting for the domain */
        LAUNCH_MIG_RUNNING,
        LAUNCH_MIG_COMPLETED,
        LAUNCH_MIG_FAILED,
        LAUNCH_MIG_CANCELLED,
} LaunchMigrationState;

const char *launch_migration_state_to_string(LaunchMigrationState s); /* "pending", "running", ... */
/* The state a status object names, -EINVAL for anything else. */
int launch_migration_state_from_string(const char *s);

/* The "migration" object of the status (null while state is NONE). */
typedef struct LaunchMigrationStatus {
        LaunchMigrationState state;
        bool incoming;          /* role: target (true) or source */
        char dest[1024];        /* source: the destination URI */
        int64_t started_at_ms;  /* realtime ms, 0 = unset */
        int64_t finished_at_ms;
        /* The switchover as this launcher saw it (realtime us, 0 = not seen): source: libvirt's
         * "suspended (migrated)" event, the vCPUs stopped for the final copy; target: the "resumed"
         * event. Their difference is the guest's real pause (QEMU's downtime figure is the source's
         * part only). */
        int64_t paused_at_us, resumed_at_us;
        /* target: what netd's activation answered — packets the early switchover delivered into the paused
         * target before the guest resumed, and the datapath switch time (-1: not known) */
        int64_t early_packets, switch_us;
        bool have_stats;
        uint64_t downtime_ms, total_ms, data_bytes, memory_iterations, wall_ms;
        char error[512];
} LaunchMigrationStatus;

const char *launch_phase_to_string(LaunchPhase p); /* "Scheduled", "Running", ... */

typedef struct LaunchStatus {
        LaunchPhase phase;
        char domain[256];        /* <namespace>_<name> */
        char vmi[256];           /* <namespace>/<name> */
        LaunchAccel accel;
        char reason[512];
        const LaunchNic *nics;   /* borrowed */
        size_t n_nics;
        int64_t started_at;      /* realtime seconds, 0 = not started */
        int64_t finished_at;     /* realtime seconds, 0 = not finished */
        pid_t pid;               /* the launcher's own pid */
        bool shutting_down;      /* a graceful shutdown was requested */
        int64_t grace_seconds;
        bool migratable;         /* started without autodestroy: live migration possible */
        unsigned reconnects;     /* times the launcher took its domain over again from a new libvirtd */
        bool paused;             /* the domain is paused (the pause op, virtctl pause), not by a migration */
        LaunchMigrationStatus mig;
} LaunchStatus;

/* {"phase","domain","vmi","accel","reason","interfaces":[{"name","mac","tap"|"pciAddress"[,"mtu"]
 *  [,"state":"detaching"][,"detachError"]}],
 *  "startedAt" (RFC 3339 or null),"finishedAt","pid","shuttingDown","terminationGracePeriodSeconds",
 *  "migratable","libvirtReconnects","paused",
 *  "migration": null | {"state","role":"source"|"target","dest","startedAt","finishedAt",
 *  "downtimeMs","totalMs","dataBytes","memoryIterations","wallMs","stats","error"}} */
json_t *launch_status_to_json(const LaunchStatus *s);
/* Atomic (temp file, fsync, rename) write of the JSON plus a newline. */
int launch_status_write(const LaunchStatus *s, const char *path) _wur_;

/* One file or directory the launcher made (launcher/runtime/files.c). */
typedef struct LaunchFile {
        char *path;
        bool dir;
} LaunchFile;

typedef struct LaunchFiles {
        LaunchFile *items; /* oldest first */
        size_t n, cap;
} LaunchFiles;

/* Creates the files the domain needs and the launcher owns: the state dir (never recorded: the
 * status file stays in it), emptyDisk sparse files (an existing one keeps its data and is not
 * recorded), cloud-init staging dirs <volume>-cidata/ with meta-data, user-data, network-config,
 * and seed ISOs (genisoimage/mkisofs/xorrisofs) holding exactly those files. Errors name the
 * volume; on failure whatever was made is removed again and *ret_created is untouched. On success
 * *ret_created (may be NULL) lists what was created or written. */
int launch_prepare_files(const LaunchVmi *v, LaunchFiles *ret_created, KvErr *e) _wur_;
/* Removes the listed files, newest first; directories only when empty (rmdir). Already gone is
 * fine. What could not be removed stays in the list for the caller to report; returns 0 or the
 * first -errno. */
int launch_files_remove(LaunchFiles *f) _wur_;
void launch_files_clear(LaunchFiles *f);

typedef struct LaunchRunOptions {
        const char *uri;         /* libvirt connect URI (required) */
        const char *status_file; /* NULL = <vmi state dir>/status.json */
        const char *socket_path; /* NULL = <vmi state dir>/launcher.sock */
        const char *serial_log;  /* NULL = <vmi state dir>/serial.log */
        int64_t grace_seconds;   /* < 0 = the VMI's terminationGracePeriodSeconds */
        LaunchAccel accel;
        /* false (default): the domain is started with VIR_DOMAIN_START_AUTODESTROY, so libvirt destroys it
         * when the launcher's connection goes away, e.g. the launcher is killed (as a VM dies with its
         * virt-launcher pod). true: the domain outlives the launcher (needed for live migration). */
        bool keep_on_exit;
        /* --migratable: like keep_on_exit (no autodestroy, which libvirt refuses to migrate) and the
         * status socket accepts {"op":"migrate"}. Implied by incoming. */
        bool migratable;
        /* --incoming: do not start the domain; wait (incoming_timeout_s, 0 = 300) for it to arrive by
         * live migration and supervise it from its resume on. */
        bool incoming;
        uint32_t incoming_timeout_s;
        /* libvirtd went away under the running domain: connect again for this long, then Failed (exit
         * 5); 0 = give up at once. main.c's default: 60. */
        uint32_t reconnect_s;
        const char *netd_socket; /* NULL: no migration-source / migration-activate notifications */
} LaunchRunOptions;

/* Builds the XML, connects, starts the transient domain and runs the event loop until the domain is
 * gone (or the connection is lost). Logs as the top of the chain; returns a LAUNCH_EXIT_* code.
 * nics[i] belongs to v->interfaces[i]. Never deletes taps or anything else it did not create.
 * Registers kvnet's epoll loop as libvirt's event implementation: call at most once per process. */
int launch_run(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchRunOptions *o);
