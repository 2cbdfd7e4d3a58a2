/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/crd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/json-util.h"
#include "common/util.h"
#include "controller/schema.h"
#include "controller/store.h"
#include "controller/table.h"

/* kvnet's cluster-wide claims (netd's claim store, Kubernetes backend): cluster-scoped, not in the embedded API. */
static const CtlResource networkclaim = { "kvnet.io", "v1alpha1", "NetworkClaim", "NetworkClaimList", "networkclaims",
                                          "networkclaim", { NULL }, false, false, NULL };

static const struct {
        const char *kind;
        bool status;                /* a status subresource: kvnet writes status through .../status */
        const CtlResource *res;     /* NULL: the embedded API's resource of that kind */
        const char *alt_deprecated; /* the alt_version's deprecationWarning */
} crds[] = {
        { "VirtualMachine", true, NULL, "kubevirt.io/v1alpha3 is now deprecated and will be removed in a future release." },
        { "VirtualMachineInstance", true, NULL, "kubevirt.io/v1alpha3 is now deprecated and will be removed in a future release." },
        { "VirtualMachineInstanceMigration", true, NULL,
          "kubevirt.io/v1alpha3 is now deprecated and will be removed in a future release." },
        /* as Multus ships it: no status subresource */
        { "NetworkAttachmentDefinition", false, NULL, NULL },
        { "IPAMClaim", true, NULL, NULL },
        /* the claim store updates whole objects (resourceVersion preconditions on one write): no subresource */
        { "NetworkClaim", false, &networkclaim, NULL },
};

static const CtlResource *resource_of(const char *kind) {
        for (size_t i = 0; i < ctl_n_resources; i++)
                if (streq(ctl_resources[i].kind, kind))
                        return &ctl_resources[i];
        return NULL;
}

static json_t *crd_version(const char *name, bool storage, const char *deprecation, const char *kind, bool status) {
        json_t *schema = ctl_schema_crd(kind), *cols = ctl_table_crd_columns(kind);
        json_t *v = schema && cols ? json_pack("{s:s,s:b,s:b,s:{s:o}}", "name", name, "served", true, "storage", storage,
                                               "schema", "openAPIV3Schema", schema)
                                   : NULL;
        if (!v) {
                json_decref(cols);
                if (!schema || !cols)
                        json_decref(schema);
                return NULL;
        }
        if (json_array_size(cols))
                json_object_set_new(v, "additionalPrinterColumns", cols);
        else
                json_decref(cols);
        if (status)
                json_object_set_new(v, "subresources", json_pack("{s:{}}", "status"));
        if (deprecation) {
                json_object_set_new(v, "deprecated", json_true());
                json_object_set_new(v, "deprecationWarning", json_string(deprecation));
        }
        return v;
}

static json_t *crd(size_t i) {
        const CtlResource *r = crds[i].res ? crds[i].res : resource_of(crds[i].kind);
        if (!r)
                return NULL;
        char name[256];
        snprintf(name, sizeof name, "%s.%s", r->plural, r->group);
        _cleanup_json_ json_t *names = json_pack("{s:s,s:s,s:s,s:s}", "kind", r->kind, "listKind", r->list_kind, "plural",
                                                 r->plural, "singular", r->singular);
        _cleanup_json_ json_t *versions = json_array(), *shorts = json_array();
        if (!names || !versions || !shorts)
                return NULL;
        for (size_t k = 0; r->short_names[k]; k++)
                if (json_array_append_new(shorts, json_string(r->short_names[k])) < 0)
                        return NULL;
        if (json_array_size(shorts) && json_object_set(names, "shortNames", shorts) < 0)
                return NULL;
        if (r->category_all && json_object_set_new(names, "categories", json_pack("[s]", "all")) < 0)
                return NULL;
        /* the storage version first, as KubeVirt lists them */
        if (json_array_append_new(versions, crd_version(r->version, true, NULL, r->kind, crds[i].status)) < 0 ||
            (r->alt_version && json_array_append_new(versions, crd_version(r->alt_version, false, crds[i].alt_deprecated,
                                                                           r->kind, crds[i].status)) < 0))
                return NULL;
        return json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:s,s:O,s:s,s:O}}", "apiVersion", "apiextensions.k8s.io/v1", "kind",
                         "CustomResourceDefinition", "metadata", "name", name, "labels", "app.kubernetes.io/part-of",
                         "kvnet", "spec", "group", r->group, "names", names, "scope",
                         r->namespaced ? "Namespaced" : "Cluster", "versions", versions);
}

int ctl_crds(json_t **ret) {
        _cleanup_json_ json_t *all = json_array();
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(crds); i++)
                if (json_array_append_new(all, crd(i)) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(all);
        return 0;
}
