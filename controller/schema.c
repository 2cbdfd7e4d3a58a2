/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/schema.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/util.h"
#include "controller/store.h"

/* ---- the table ---- */

typedef enum SchemaType {
        S_OBJECT,   /* the fields in sub */
        S_FREE,     /* an object kvnet does not look into (or only the server checks) */
        S_ARRAY,    /* of objects with the fields in sub (NULL: free objects) */
        S_STRINGS,  /* an array of strings */
        S_STRING,
        S_QUANTITY, /* a Kubernetes quantity: "128Mi", or a number */
        S_INTEGER,
        S_BOOLEAN,
        S_LABELS,   /* a map of strings */
        S_TIME,     /* a metav1.Time: an RFC 3339 string */
} SchemaType;

typedef struct SchemaField {
        const char *name; /* NULL ends a list */
        SchemaType type;
        const struct SchemaField *sub;
        const char *description;
        bool required;
        bool open; /* S_OBJECT: in a CRD, fields besides these are kept (x-kubernetes-preserve-unknown-fields) */
} SchemaField;

/* ObjectMeta, field by field as kube-apiserver publishes io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta (here
 * inline, not a $ref). An object with properties, not a free map: kubectl's validation skips a field whose
 * value is null in an object with properties, but refuses a null in a map ("unknown object type "nil""),
 * and `virtctl create vm` and `kubectl create --dry-run -o yaml` write `creationTimestamp: null`. */
static const SchemaField owner_reference[] = {
        { "apiVersion", S_STRING, NULL, "API version of the owner.", true },
        { "kind", S_STRING, NULL, "Kind of the owner.", true },
        { "name", S_STRING, NULL, "Name of the owner.", true },
        { "uid", S_STRING, NULL, "UID of the owner.", true },
        { "controller", S_BOOLEAN, NULL, "true: the owner is the managing controller (a VMI's VirtualMachine)." },
        { "blockOwnerDeletion", S_BOOLEAN, NULL, "Accepted; kvnet deletes owned objects after their owner in any case." },
        {},
};

static const SchemaField object_meta[] = {
        { "name", S_STRING, NULL, "The object's name, unique in its namespace (a DNS subdomain)." },
        { "generateName", S_STRING, NULL, "Prefix of a name the server makes unique (5 random characters), when name is not given." },
        { "namespace", S_STRING, NULL, "The namespace; the request's when not given." },
        { "labels", S_LABELS, NULL, "Labels: string keys and values, for selectors." },
        { "annotations", S_LABELS, NULL, "Annotations: string keys and values." },
        { "ownerReferences", S_ARRAY, owner_reference, "The objects this one depends on: it is deleted when its controller is gone." },
        { "finalizers", S_STRINGS, NULL, "Accepted and stored; kvnet runs no finalizers." },
        { "uid", S_STRING, NULL, "Set by the server: the object's unique id." },
        { "resourceVersion", S_STRING, NULL, "Set by the server at every change; an update naming an older one is refused (409 Conflict)." },
        { "generation", S_INTEGER, NULL, "Set by the server: 1, +1 whenever spec changes." },
        { "creationTimestamp", S_TIME, NULL, "Set by the server at create (RFC 3339, UTC); a value sent by a client, null included, is ignored." },
        { "deletionTimestamp", S_TIME, NULL, "Set by the server; kvnet deletes at once, so it is never seen." },
        { "deletionGracePeriodSeconds", S_INTEGER, NULL, "Set by the server; unused by kvnet." },
        { "selfLink", S_STRING, NULL, "Deprecated; not set." },
        { "managedFields", S_ARRAY, NULL, "Server-side apply's field managers: accepted and stored; kvnet does not track them." },
        {},
};

#define REFUSED "Not supported by kvnet: refused at create and update (422 naming this field)."
#define IGNORED "Accepted and ignored by kvnet (kvnet-launcher warns)."

static const SchemaField resource_list[] = {
        { "memory", S_QUANTITY, NULL, "Memory, a quantity such as 128Mi or 1Gi: the guest's memory when memory.guest is not given, and what the scheduler reserves." },
        { "cpu", S_QUANTITY, NULL, "CPU, a quantity such as 2 or 500m: what the scheduler reserves (the guest's vCPUs come from domain.cpu)." },
        {},
};

static const SchemaField resources[] = {
        { "requests", S_OBJECT, resource_list, "Resources the VMI requests: the scheduler places it on a node whose allocatable CPU and memory cover them." },
        { "limits", S_LABELS, NULL, IGNORED },
        { "overcommitGuestOverhead", S_BOOLEAN, NULL, IGNORED },
        {},
};

static const SchemaField cpu[] = {
        { "cores", S_INTEGER, NULL, "Cores per socket (1..1024, default 1)." },
        { "sockets", S_INTEGER, NULL, "Sockets (1..1024, default 1)." },
        { "threads", S_INTEGER, NULL, "Threads per core (1..1024, default 1)." },
        { "model", S_STRING, NULL, "CPU model: host-model, host-passthrough or a QEMU model name (under TCG host modes fall back with a warning)." },
        { "features", S_ARRAY, NULL, IGNORED },
        { "maxSockets", S_INTEGER, NULL, IGNORED },
        { "dedicatedCpuPlacement", S_BOOLEAN, NULL, REFUSED },
        { "isolateEmulatorThread", S_BOOLEAN, NULL, REFUSED },
        { "numa", S_FREE, NULL, REFUSED },
        { "realtime", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField memory[] = {
        { "guest", S_QUANTITY, NULL, "Memory the guest sees, a quantity such as 1Gi (else resources.requests.memory)." },
        { "maxGuest", S_QUANTITY, NULL, IGNORED },
        { "hugepages", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField kernel_container[] = {
        { "image", S_STRING, NULL, "The image holding the kernel and initrd, an OCI reference (registry/repository:tag or @sha256:digest) resolved in the node's local image store (docs/images.md): kvnet pulls nothing." },
        { "kernelPath", S_STRING, NULL, "Absolute path of the kernel inside the image (e.g. /boot/vmlinuz); nothing outside the image is reachable.", true },
        { "initrdPath", S_STRING, NULL, "Absolute path of the initrd inside the image (e.g. /boot/initrd.img)." },
        { "imagePullPolicy", S_STRING, NULL, IGNORED },
        { "imagePullSecret", S_STRING, NULL, IGNORED },
        {},
};

static const SchemaField kernel_boot[] = {
        { "kernelArgs", S_STRING, NULL, "The kernel command line." },
        { "container", S_OBJECT, kernel_container, "Where the kernel and initrd come from: an image of the local image store.", true },
        {},
};

static const SchemaField bootloader[] = {
        { "bios", S_FREE, NULL, "SeaBIOS (the default)." },
        { "efi", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField firmware[] = {
        { "kernelBoot", S_OBJECT, kernel_boot, "Boot a kernel and initrd directly (no bootloader), taken from an image of the local image store." },
        { "uuid", S_STRING, NULL, "The guest's SMBIOS UUID." },
        { "bootloader", S_OBJECT, bootloader, "The bootloader: bios only." },
        { "serial", S_STRING, NULL, IGNORED },
        { "acpi", S_FREE, NULL, IGNORED },
        {},
};

static const SchemaField features[] = {
        { "acpi", S_FREE, NULL, "ACPI, on by default; {enabled: false} is refused (graceful shutdown presses the ACPI power button)." },
        { "apic", S_FREE, NULL, IGNORED },
        { "hyperv", S_FREE, NULL, IGNORED },
        { "smm", S_FREE, NULL, IGNORED },
        { "kvm", S_FREE, NULL, IGNORED },
        { "pvspinlock", S_FREE, NULL, IGNORED },
        {},
};

static const SchemaField disk_target[] = {
        { "bus", S_STRING, NULL, "virtio (default), sata or scsi." },
        { "readonly", S_BOOLEAN, NULL, "Read-only." },
        { "pciAddress", S_STRING, NULL, "Guest PCI address (DDDD:BB:SS.F); libvirt picks one when absent." },
        { "tray", S_STRING, NULL, IGNORED },
        {},
};

static const SchemaField disk[] = {
        { "name", S_STRING, NULL, "The disk's name: the volume of the same name is its source.", true },
        { "disk", S_OBJECT, disk_target, "Attach as a disk." },
        { "cdrom", S_OBJECT, disk_target, "Attach as a CD-ROM." },
        { "bootOrder", S_INTEGER, NULL, "Boot order (unique over disks and interfaces)." },
        { "serial", S_STRING, NULL, "The disk's serial number." },
        { "lun", S_FREE, NULL, REFUSED },
        { "shareable", S_BOOLEAN, NULL, REFUSED },
        { "dedicatedIOThread", S_BOOLEAN, NULL, IGNORED },
        { "cache", S_STRING, NULL, IGNORED },
        { "io", S_STRING, NULL, IGNORED },
        { "tag", S_STRING, NULL, IGNORED },
        { "errorPolicy", S_STRING, NULL, IGNORED },
        { "blockSize", S_FREE, NULL, IGNORED },
        {},
};

static const SchemaField port[] = {
        { "name", S_STRING, NULL, "The port's name." },
        { "port", S_INTEGER, NULL, "The port (1..65535) forwarded to the guest.", true },
        { "protocol", S_STRING, NULL, "TCP (default) or UDP." },
        {},
};

static const SchemaField interface[] = {
        { "name", S_STRING, NULL, "The interface's name: the network of the same name (spec.networks) is where it connects.", true },
        { "bridge", S_FREE, NULL, "Bridge binding: the guest takes the pod's (or the network's) address itself, by DHCP from kvnet's netd; live-migrates with the same IP and MAC." },
        { "masquerade", S_FREE, NULL, "Masquerade binding: the guest sits behind NAT on a private subnet, its ports forwarded (ports); pod network only." },
        { "sriov", S_FREE, NULL, "SR-IOV binding: a virtual function of the node's NIC passed to the guest (Multus network); not live-migratable." },
        { "model", S_STRING, NULL, "NIC model: virtio (default), e1000, e1000e, igb, rtl8139, ne2k_pci or pcnet." },
        { "macAddress", S_STRING, NULL, "The guest's MAC (02:00:00:00:00:01); one derived from the VM's name when absent." },
        { "pciAddress", S_STRING, NULL, "Guest PCI address (DDDD:BB:SS.F)." },
        { "ports", S_ARRAY, port, "Ports forwarded to the guest (masquerade)." },
        { "bootOrder", S_INTEGER, NULL, "Boot order (unique over disks and interfaces): boot from the network." },
        { "state", S_STRING, NULL, "up (default) or absent." },
        { "slirp", S_FREE, NULL, REFUSED },
        { "passt", S_FREE, NULL, REFUSED },
        { "macvtap", S_FREE, NULL, REFUSED },
        { "binding", S_FREE, NULL, REFUSED },
        { "dhcpOptions", S_FREE, NULL, IGNORED },
        { "tag", S_STRING, NULL, IGNORED },
        { "acpiIndex", S_INTEGER, NULL, IGNORED },
        {},
};

static const SchemaField devices[] = {
        { "interfaces", S_ARRAY, interface, "The guest's network interfaces, one per network (spec.networks, joined by name), each with its binding: bridge, masquerade or sriov." },
        { "disks", S_ARRAY, disk, "The guest's disks, one per volume (spec.volumes, joined by name)." },
        { "autoattachPodInterface", S_BOOLEAN, NULL, "false: no interface on the pod network unless one is listed." },
        { "rng", S_FREE, NULL, IGNORED },
        { "autoattachGraphicsDevice", S_BOOLEAN, NULL, IGNORED },
        { "autoattachSerialConsole", S_BOOLEAN, NULL, IGNORED },
        { "autoattachMemBalloon", S_BOOLEAN, NULL, IGNORED },
        { "autoattachInputDevice", S_BOOLEAN, NULL, IGNORED },
        { "autoattachVSOCK", S_BOOLEAN, NULL, IGNORED },
        { "networkInterfaceMultiqueue", S_BOOLEAN, NULL, IGNORED },
        { "blockMultiQueue", S_BOOLEAN, NULL, IGNORED },
        { "inputs", S_ARRAY, NULL, IGNORED },
        { "watchdog", S_FREE, NULL, IGNORED },
        { "useVirtioTransitional", S_BOOLEAN, NULL, IGNORED },
        { "sound", S_FREE, NULL, IGNORED },
        { "logSerialConsole", S_BOOLEAN, NULL, IGNORED },
        { "disableHotplug", S_BOOLEAN, NULL, IGNORED },
        { "gpus", S_ARRAY, NULL, REFUSED },
        { "hostDevices", S_ARRAY, NULL, REFUSED },
        { "filesystems", S_ARRAY, NULL, REFUSED },
        { "clientPassthrough", S_FREE, NULL, REFUSED },
        { "tpm", S_FREE, NULL, REFUSED },
        { "downwardMetrics", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField domain[] = {
        { "cpu", S_OBJECT, cpu, "The guest's CPU topology and model." },
        { "memory", S_OBJECT, memory, "The guest's memory." },
        { "resources", S_OBJECT, resources, "What the VMI requests of its node (memory, cpu)." },
        { "devices", S_OBJECT, devices, "The guest's devices: interfaces and disks." },
        { "firmware", S_OBJECT, firmware, "Firmware: BIOS, the SMBIOS UUID, or a direct kernel boot (kernelBoot)." },
        { "features", S_OBJECT, features, "Hypervisor features: ACPI." },
        { "machine", S_FREE, NULL, IGNORED },
        { "clock", S_FREE, NULL, IGNORED },
        { "chassis", S_FREE, NULL, IGNORED },
        { "ioThreadsPolicy", S_STRING, NULL, IGNORED },
        { "ioThreads", S_FREE, NULL, IGNORED },
        { "launchSecurity", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField pod_network[] = {
        { "vmNetworkCIDR", S_STRING, NULL, IGNORED },
        { "vmIPv6NetworkCIDR", S_STRING, NULL, IGNORED },
        {},
};

static const SchemaField multus_network[] = {
        { "networkName", S_STRING, NULL, "The NetworkAttachmentDefinition: name (the VMI's namespace) or namespace/name.", true },
        { "default", S_BOOLEAN, NULL, "This network replaces the pod network." },
        {},
};

static const SchemaField network[] = {
        { "name", S_STRING, NULL, "The network's name: the interface of the same name connects to it.", true },
        { "pod", S_OBJECT, pod_network, "The pod network (the node's CNI chain, kvnet's plugin)." },
        { "multus", S_OBJECT, multus_network, "A secondary network: a NetworkAttachmentDefinition, through Multus (or kvnet-multus)." },
        {},
};

static const SchemaField container_disk[] = {
        { "image", S_STRING, NULL, "An OCI image reference (registry/repository:tag or @sha256:digest) resolved in the node's local image store, whose disk/ holds the disk (docs/images.md): kvnet pulls nothing and reads nothing outside the store.", true },
        { "imagePullPolicy", S_STRING, NULL, IGNORED },
        { "imagePullSecret", S_STRING, NULL, IGNORED },
        { "path", S_STRING, NULL, IGNORED },
        {},
};

static const SchemaField cloud_init[] = {
        { "userData", S_STRING, NULL, "cloud-init user-data." },
        { "userDataBase64", S_STRING, NULL, "cloud-init user-data, base64." },
        { "networkData", S_STRING, NULL, "cloud-init network-config." },
        { "networkDataBase64", S_STRING, NULL, "cloud-init network-config, base64." },
        { "userDataSecretRef", S_FREE, NULL, REFUSED },
        { "networkDataSecretRef", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField empty_disk[] = {
        { "capacity", S_QUANTITY, NULL, "The disk's size, a quantity such as 1Gi.", true },
        {},
};

static const SchemaField volume[] = {
        { "name", S_STRING, NULL, "The volume's name: the disk of the same name uses it.", true },
        { "containerDisk", S_OBJECT, container_disk, "A disk image from the node's local image store (read-only base, the guest's writes are dropped with the VM)." },
        { "cloudInitNoCloud", S_OBJECT, cloud_init, "A cloud-init NoCloud seed (an ISO kvnet makes)." },
        { "emptyDisk", S_OBJECT, empty_disk, "An empty raw disk on the node, gone with the VM (not live-migratable)." },
        { "persistentVolumeClaim", S_FREE, NULL, REFUSED },
        { "dataVolume", S_FREE, NULL, REFUSED },
        { "hostDisk", S_FREE, NULL, REFUSED },
        { "ephemeral", S_FREE, NULL, REFUSED },
        { "cloudInitConfigDrive", S_FREE, NULL, REFUSED },
        { "configMap", S_FREE, NULL, REFUSED },
        { "secret", S_FREE, NULL, REFUSED },
        { "serviceAccount", S_FREE, NULL, REFUSED },
        { "downwardAPI", S_FREE, NULL, REFUSED },
        { "downwardMetrics", S_FREE, NULL, REFUSED },
        { "sysprep", S_FREE, NULL, REFUSED },
        { "memoryDump", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField vmi_spec[] = {
        { "domain", S_OBJECT, domain, "The virtual machine: CPU, memory, devices, firmware.", true },
        { "networks", S_ARRAY, network, "The networks the VM's interfaces connect to: the pod network, Multus networks." },
        { "volumes", S_ARRAY, volume, "The sources of the VM's disks: containerDisk, cloudInitNoCloud, emptyDisk." },
        { "terminationGracePeriodSeconds", S_INTEGER, NULL, "Seconds the guest has to power off after an ACPI shutdown before it is destroyed (0..86400, default 30)." },
        { "hostname", S_STRING, NULL, "The guest's hostname (a DNS label; default: the VMI's name)." },
        { "subdomain", S_STRING, NULL, "The guest's subdomain (a DNS label)." },
        { "nodeSelector", S_LABELS, NULL, "Labels a node must carry to take the VMI." },
        { "affinity", S_FREE, NULL, IGNORED },
        { "tolerations", S_ARRAY, NULL, IGNORED },
        { "topologySpreadConstraints", S_ARRAY, NULL, IGNORED },
        { "schedulerName", S_STRING, NULL, IGNORED },
        { "priorityClassName", S_STRING, NULL, IGNORED },
        { "evictionStrategy", S_STRING, NULL, IGNORED },
        { "dnsPolicy", S_STRING, NULL, IGNORED },
        { "dnsConfig", S_FREE, NULL, IGNORED },
        { "architecture", S_STRING, NULL, IGNORED },
        { "livenessProbe", S_FREE, NULL, REFUSED },
        { "readinessProbe", S_FREE, NULL, REFUSED },
        { "accessCredentials", S_ARRAY, NULL, REFUSED },
        { "startStrategy", S_STRING, NULL, REFUSED },
        { "readinessGates", S_ARRAY, NULL, REFUSED },
        { "resourceClaims", S_ARRAY, NULL, REFUSED },
        {},
};

static const SchemaField template[] = {
        { "metadata", S_OBJECT, object_meta, "The VMI's metadata: its labels and annotations are copied to the VMI." },
        { "spec", S_OBJECT, vmi_spec, "The VMI's spec." },
        {},
};

static const SchemaField vm_spec[] = {
        { "template", S_OBJECT, template, "The VirtualMachineInstance the VM runs.", true },
        { "running", S_BOOLEAN, NULL, "true: the VM runs (its VMI exists); false: it is stopped. Not together with runStrategy." },
        { "runStrategy", S_STRING, NULL, "Always, RerunOnFailure, Once, Manual or Halted. Not together with running." },
        { "dataVolumeTemplates", S_ARRAY, NULL, REFUSED },
        { "instancetype", S_FREE, NULL, REFUSED },
        { "preference", S_FREE, NULL, REFUSED },
        {},
};

static const SchemaField vmim_spec[] = {
        { "vmiName", S_STRING, NULL, "The VirtualMachineInstance to migrate (same namespace).", true },
        { "addedNodeSelector", S_LABELS, NULL, "Labels the target node must carry besides the VMI's nodeSelector (kubernetes.io/hostname: a node; never the VMI's own)." },
        {},
};

static const SchemaField nad_spec[] = {
        { "config", S_STRING, NULL, "The network's CNI config, a JSON object in a string (for kvnet: \"type\": \"kvnet\", docs/cni-config.md)." },
        {},
};

static const SchemaField ipamclaim_spec[] = {
        { "network", S_STRING, NULL, "The CNI network (the name in the NAD's config) the addresses are for.", true },
        { "interface", S_STRING, NULL, "The pod interface the addresses are for (net1, net2, ...)." },
        { "ipRequests", S_ARRAY, NULL, "Addresses/prefixes asked for (at most one per family); kvnet does not act on them." },
        {},
};

/* kvnet's own kind for cluster-wide claims (the claim store's Kubernetes backend, netd/state/claimstore.c): a
 * CRD of the cluster, not served by the embedded API. The fields the backend reads are typed; others are kept. */
static const SchemaField networkclaim_spec[] = {
        { "network", S_STRING, NULL, "The network (CNI network name) the claim is on." },
        { "key", S_STRING, NULL, "What is claimed: the VM's address or MAC on that network, as the claim store names it." },
        { "ips", S_STRINGS, NULL, "The addresses held." },
        { "mac", S_STRING, NULL, "The MAC held." },
        { "holder", S_STRING, NULL, "The node holding the claim: only it may attach the VM's NIC." },
        { "attached", S_BOOLEAN, NULL, "true: the holder has the NIC attached." },
        { "target", S_STRING, NULL, "A live migration's target node, which takes the claim over." },
        { "targetReady", S_BOOLEAN, NULL, "true: the target's datapath is ready (passive) for the take-over." },
        {},
};

/* A kind's top level; open: its spec keeps fields besides those of the table (in a CRD). */
#define TOP_OPEN(kind, spec, spec_doc, open)                                                                       \
        {                                                                                                          \
                { "apiVersion", S_STRING, NULL, "APIVersion defines the versioned schema of this representation of an object." }, \
                { "kind", S_STRING, NULL, "Kind is a string value representing the REST resource this object represents." }, \
                { "metadata", S_OBJECT, object_meta, "Standard object's metadata (ObjectMeta): name, namespace, labels, annotations." }, \
                { "spec", S_OBJECT, spec, spec_doc, false, open },                                                 \
                { "status", S_FREE, NULL, "The " kind "'s status, written by kvnet." },                            \
                {},                                                                                                \
        }
#define TOP(kind, spec, spec_doc) TOP_OPEN(kind, spec, spec_doc, false)

static const SchemaField vm_top[] = TOP("VirtualMachine", vm_spec, "The VM: the VMI it runs and whether it runs.");
static const SchemaField vmi_top[] = TOP("VirtualMachineInstance", vmi_spec, "The virtual machine as it runs.");
static const SchemaField vmim_top[] = TOP("VirtualMachineInstanceMigration", vmim_spec, "Which VMI to live-migrate.");
static const SchemaField nad_top[] = TOP("NetworkAttachmentDefinition", nad_spec, "The network's CNI config.");
static const SchemaField ipamclaim_top[] = TOP("IPAMClaim", ipamclaim_spec, "Which network and pod interface the claim is for.");
static const SchemaField networkclaim_top[] = TOP_OPEN("NetworkClaim", networkclaim_spec,
                                                     "The claim: network, key, what is held, by which node, and a migration's target.", true);

static const struct {
        const char *name, *group, *kind, *description;
        const SchemaField *fields;
} definitions[] = {
        { "io.kubevirt.v1.VirtualMachine", "kubevirt.io", "VirtualMachine",
          "VirtualMachine handles the VirtualMachineInstance that runs it: kvnet starts and stops it as spec.running or spec.runStrategy say.",
          vm_top },
        { "io.kubevirt.v1.VirtualMachineInstance", "kubevirt.io", "VirtualMachineInstance",
          "VirtualMachineInstance is a running virtual machine: kvnet schedules it onto a node, whose kvnet-launcher runs it under libvirt.",
          vmi_top },
        { "io.kubevirt.v1.VirtualMachineInstanceMigration", "kubevirt.io", "VirtualMachineInstanceMigration",
          "VirtualMachineInstanceMigration live-migrates a VirtualMachineInstance to another node, keeping its IP, MAC and TCP connections.",
          vmim_top },
        { "io.cncf.cni.k8s.v1.NetworkAttachmentDefinition", "k8s.cni.cncf.io", "NetworkAttachmentDefinition",
          "NetworkAttachmentDefinition is a secondary network (Multus): its CNI config.", nad_top },
        { "io.cncf.cni.k8s.v1alpha1.IPAMClaim", "k8s.cni.cncf.io", "IPAMClaim",
          "IPAMClaim keeps a VM's addresses on a secondary network across its pods: status.ips, written by kvnet-multus at the first ADD, are asked for at every later one.",
          ipamclaim_top },
        /* not in ctl_resources: only a CRD (ctl_schema_crd), never published by the embedded API */
        { "io.kvnet.v1alpha1.NetworkClaim", "kvnet.io", "NetworkClaim",
          "NetworkClaim is one cluster-wide claim of kvnet's claim store: one holder per VM address or MAC, created and updated with resourceVersion preconditions so that two nodes never both hold it.",
          networkclaim_top },
};

/* ---- OpenAPI v2 JSON (and a CRD's structural v3 schema) from the table ---- */

/* The two renderings of the table: OpenAPI v2 as the embedded API publishes it, and the structural OpenAPI v3
 * schema of a CustomResourceDefinition (every node typed; free-form objects marked
 * x-kubernetes-preserve-unknown-fields, quantities x-kubernetes-int-or-string, as KubeVirt's CRDs do). */
typedef enum SchemaForm {
        FORM_OPENAPI_V2,
        FORM_CRD,
} SchemaForm;

/* Kubernetes' resource.Quantity, as KubeVirt's CRDs check it. */
#define QUANTITY_PATTERN "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$"

static json_t *field_schema(const SchemaField *f, SchemaForm form);

static json_t *object_schema(const SchemaField *fields, const char *description, bool open, SchemaForm form) {
        json_t *o = json_pack("{s:s}", "type", "object"), *props = json_object(), *req = json_array();
        if (!o || !props || !req) {
                json_decref(o), json_decref(props), json_decref(req);
                return NULL;
        }
        if (description)
                json_object_set_new(o, "description", json_string(description));
        if (open && form == FORM_CRD)
                json_object_set_new(o, "x-kubernetes-preserve-unknown-fields", json_true());
        for (const SchemaField *f = fields; f->name; f++) {
                json_object_set_new(props, f->name, field_schema(f, form));
                if (f->required)
                        json_array_append_new(req, json_string(f->name));
        }
        json_object_set_new(o, "properties", props);
        if (json_array_size(req))
                json_object_set_new(o, "required", req);
        else
                json_decref(req);
        return o;
}

/* An object whose fields are not described: a map of anything (additionalProperties: {}), which every
 * kubectl reads as such; in a CRD an object whose unknown fields the server keeps (additionalProperties: {}
 * is not structural). */
static json_t *free_object(SchemaForm form) {
        if (form == FORM_CRD)
                return json_pack("{s:s,s:b}", "type", "object", "x-kubernetes-preserve-unknown-fields", true);
        return json_pack("{s:s,s:{}}", "type", "object", "additionalProperties");
}

static json_t *field_schema(const SchemaField *f, SchemaForm form) {
        json_t *s = NULL;
        switch (f->type) {
        case S_OBJECT:
                return object_schema(f->sub, f->description, f->open, form);
        case S_FREE:
                s = free_object(form);
                break;
        case S_ARRAY:
                s = json_pack("{s:s,s:o}", "type", "array", "items",
                              f->sub ? object_schema(f->sub, NULL, false, form) : free_object(form));
                break;
        case S_STRINGS:
                s = json_pack("{s:s,s:{s:s}}", "type", "array", "items", "type", "string");
                break;
        case S_STRING:
                s = json_pack("{s:s}", "type", "string");
                break;
        case S_QUANTITY: /* as Kubernetes publishes resource.Quantity and IntOrString in v2, and a CRD has them */
                if (form == FORM_CRD)
                        s = json_pack("{s:[{s:s},{s:s}],s:s,s:b}", "anyOf", "type", "integer", "type", "string", "pattern",
                                      QUANTITY_PATTERN, "x-kubernetes-int-or-string", true);
                else
                        s = json_pack("{s:s,s:s}", "type", "string", "format", "int-or-string");
                break;
        case S_INTEGER:
                s = json_pack("{s:s,s:s}", "type", "integer", "format", "int64");
                break;
        case S_BOOLEAN:
                s = json_pack("{s:s}", "type", "boolean");
                break;
        case S_LABELS:
                s = json_pack("{s:s,s:{s:s}}", "type", "object", "additionalProperties", "type", "string");
                break;
        case S_TIME: /* as Kubernetes publishes io.k8s.apimachinery.pkg.apis.meta.v1.Time */
                s = json_pack("{s:s,s:s}", "type", "string", "format", "date-time");
                break;
        }
        if (s && f->description)
                json_object_set_new(s, "description", json_string(f->description));
        return s;
}

json_t *ctl_schema_definitions(const char *group, const char *version) {
        json_t *defs = json_object();
        for (size_t i = 0; defs && i < ELEMENTSOF(definitions); i++) {
                if (group && !streq(group, definitions[i].group))
                        continue;
                /* the versions the API serves the kind at */
                const CtlResource *res = NULL;
                for (size_t k = 0; k < ctl_n_resources; k++)
                        if (streq(ctl_resources[k].kind, definitions[i].kind))
                                res = &ctl_resources[k];
                if (!res || (version && !ctl_resource_serves(res, version)))
                        continue;
                json_t *gvk = json_array();
                for (const char *const *v = (const char *const[]){ res->version, res->alt_version, NULL }; gvk && *v; v++)
                        json_array_append_new(gvk, json_pack("{s:s,s:s,s:s}", "group", res->group, "kind", res->kind,
                                                             "version", *v));
                json_t *d = object_schema(definitions[i].fields, definitions[i].description, false, FORM_OPENAPI_V2);
                if (!d || !gvk) {
                        json_decref(d), json_decref(gvk), json_decref(defs);
                        return NULL;
                }
                json_object_set_new(d, "x-kubernetes-group-version-kind", gvk);
                json_object_set_new(defs, definitions[i].name, d);
        }
        return defs;
}

json_t *ctl_schema_crd(const char *kind) {
        for (size_t i = 0; i < ELEMENTSOF(definitions); i++) {
                if (!streq(definitions[i].kind, kind))
                        continue;
                json_t *d = object_schema(definitions[i].fields, definitions[i].description, false, FORM_CRD);
                /* a CRD's own metadata is the server's ObjectMeta: its schema may say nothing more than the type */
                json_t *props = json_object_get(d, "properties");
                if (d && json_object_set_new(props, "metadata", json_pack("{s:s}", "type", "object")) < 0) {
                        json_decref(d);
                        return NULL;
                }
                return d;
        }
        return NULL;
}

json_t *ctl_openapi_v2_json(const char *title, const char *version) {
        json_t *defs = ctl_schema_definitions(NULL, NULL);
        return defs ? json_pack("{s:s,s:{s:s,s:s},s:{},s:o}", "swagger", "2.0", "info", "title", title, "version", version,
                                "paths", "definitions", defs)
                    : NULL;
}

/* ---- OpenAPI v3 ---- */

json_t *ctl_openapi_v3_index(const char *hash) {
        json_t *paths = json_object();
        for (size_t i = 0; paths && i < ctl_n_resources; i++) {
                const CtlResource *r = &ctl_resources[i];
                for (const char *const *v = (const char *const[]){ r->version, r->alt_version, NULL }; *v; v++) {
                        char key[128], url[256];
                        if (!r->group[0])
                                continue;
                        snprintf(key, sizeof key, "apis/%s/%s", r->group, *v);
                        snprintf(url, sizeof url, "/openapi/v3/%s?hash=%s", key, hash);
                        json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
                }
        }
        return paths ? json_pack("{s:o}", "paths", paths) : NULL;
}

json_t *ctl_openapi_v3_gv(const char *group, const char *version, const char *title, const char *server_version) {
        json_t *defs = ctl_schema_definitions(group, version);
        if (!defs || json_object_size(defs) == 0) {
                json_decref(defs);
                return NULL;
        }
        /* kubectl explain finds a resource's kind through the x-kubernetes-group-version-kind of its paths'
         * operations, then the schema with that kind */
        json_t *paths = json_object();
        for (size_t i = 0; paths && i < ctl_n_resources; i++) {
                const CtlResource *r = &ctl_resources[i];
                char path[256];
                if (!streq(r->group, group) || !ctl_resource_serves(r, version))
                        continue;
                snprintf(path, sizeof path, "/apis/%s/%s/%s%s/{name}", group, version,
                         r->namespaced ? "namespaces/{namespace}/" : "", r->plural);
                json_object_set_new(paths, path,
                                    json_pack("{s:{s:s,s:{s:s,s:s,s:s}}}", "get", "description", "read the object",
                                              "x-kubernetes-group-version-kind", "group", group, "kind", r->kind,
                                              "version", version));
        }
        if (!paths) {
                json_decref(defs);
                return NULL;
        }
        return json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:o}}", "openapi", "3.0.0", "info", "title", title, "version",
                         server_version, "paths", paths, "components", "schemas", defs);
}

/* ---- gnostic's openapi_v2.Document, protobuf ---- */

typedef struct Pb {
        uint8_t *b;
        size_t n, cap;
        bool oom;
} Pb;

static void pb_raw(Pb *p, const void *data, size_t len) {
        if (p->oom || len == 0)
                return;
        if (p->n + len > p->cap) {
                size_t cap = (p->n + len) * 2 + 64;
                uint8_t *b = realloc(p->b, cap);
                if (!b) {
                        p->oom = true;
                        return;
                }
                p->b = b;
                p->cap = cap;
        }
        memcpy(p->b + p->n, data, len);
        p->n += len;
}

static void pb_varint(Pb *p, uint64_t v) {
        uint8_t buf[10];
        size_t n = 0;
        do {
                buf[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
        pb_raw(p, buf, n);
}

/* A length-delimited field (wire type 2): a string or an embedded message. */
static void pb_bytes(Pb *p, unsigned field, const void *data, size_t len) {
        pb_varint(p, (uint64_t) field << 3 | 2);
        pb_varint(p, len);
        pb_raw(p, data, len);
}

static void pb_string(Pb *p, unsigned field, const char *s) {
        pb_bytes(p, field, s, strlen(s));
}

/* child (consumed) as an embedded message. */
static void pb_message(Pb *p, unsigned field, Pb *child) {
        p->oom |= child->oom;
        pb_bytes(p, field, child->b, child->n);
        free(child->b);
        *child = (Pb){};
}

/* NamedAny{name, Any{yaml}}: a vendor extension, its value as YAML (JSON is YAML). */
static void pb_named_any(Pb *p, unsigned field, const char *name, json_t *value) {
        Pb any = {}, named = {};
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
                p->oom = true;
                return;
        }
        pb_string(&any, 2, text);
        free(text);
        pb_string(&named, 1, name);
        pb_message(&named, 2, &any);
        pb_message(p, field, &named);
}

static void pb_schema(Pb *p, json_t *s);

/* repeated NamedSchema (Definitions, Properties: field 1) from a JSON object of schemas. */
static void pb_named_schemas(Pb *p, json_t *obj) {
        const char *name;
        json_t *v;
        json_object_foreach(obj, name, v) {
                Pb named = {}, schema = {};
                pb_schema(&schema, v);
                pb_string(&named, 1, name);
                pb_message(&named, 2, &schema);
                pb_message(p, 1, &named);
        }
}

/* Schema: _ref 1, format 2, description 4, required 19, additional_properties 21, type 22, items 23,
 * properties 25, vendor_extension 31. */
static void pb_schema(Pb *p, json_t *s) {
        const char *key;
        json_t *v;
        json_object_foreach(s, key, v) {
                Pb child = {}, inner = {};
                size_t i;
                json_t *x;
                if (streq(key, "$ref"))
                        pb_string(p, 1, json_string_value(v));
                else if (streq(key, "format"))
                        pb_string(p, 2, json_string_value(v));
                else if (streq(key, "description"))
                        pb_string(p, 4, json_string_value(v));
                else if (streq(key, "required"))
                        json_array_foreach(v, i, x) pb_string(p, 19, json_string_value(x));
                else if (streq(key, "additionalProperties")) {
                        if (json_is_boolean(v)) {
                                pb_varint(&child, 2 << 3 | 0);
                                pb_varint(&child, json_is_true(v));
                        } else {
                                pb_schema(&inner, v);
                                pb_message(&child, 1, &inner);
                        }
                        pb_message(p, 21, &child);
                } else if (streq(key, "type")) {
                        pb_string(&child, 1, json_string_value(v));
                        pb_message(p, 22, &child);
                } else if (streq(key, "items")) {
                        pb_schema(&inner, v);
                        pb_message(&child, 1, &inner);
                        pb_message(p, 23, &child);
                } else if (streq(key, "properties")) {
                        pb_named_schemas(&child, v);
                        pb_message(p, 25, &child);
                } else if (strncmp(key, "x-", 2) == 0)
                        pb_named_any(p, 31, key, v);
        }
}

int ctl_openapi_v2_proto(const char *title, const char *version, uint8_t **ret, size_t *ret_len) {
        _cleanup_json_ json_t *defs = ctl_schema_definitions(NULL, NULL);
        if (!defs)
                return -ENOMEM;
        /* Document{swagger 1, info 2 {title 1, version 2}, definitions 9 {additional_properties 1}} */
        Pb doc = {}, info = {}, d = {};
        pb_string(&doc, 1, "2.0");
        pb_string(&info, 1, title);
        pb_string(&info, 2, version);
        pb_message(&doc, 2, &info);
        pb_named_schemas(&d, defs);
        pb_message(&doc, 9, &d);
        if (doc.oom) {
                free(doc.b);
                return -ENOMEM;
        }
        *ret = doc.b;
        *ret_len = doc.n;
        return 0;
}
