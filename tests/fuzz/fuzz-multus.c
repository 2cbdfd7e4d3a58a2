// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over multus-compat's parsers of outside input: the same bytes as the networks annotation (every
// form), the default-network override, a NetworkAttachmentDefinition (and the conflist made from it with cni-args),
// the meta plugin's config, a CNI result made into network-status (and into an IPAMClaim's addresses), an
// IPAMClaim, and a cache file. None may crash; a refusal names
// its reason; an accepted annotation has at most MC_NETWORKS_MAX elements, each with a name and a namespace.
//
// Build: `make fuzz` -> build/fuzz/fuzz-multus (sources: FUZZ_SRC_fuzz-multus in the Makefile).
// Run:   `make fuzz-smoke`, or build/fuzz/fuzz-multus -max_total_time=60 build/fuzz/corpus/fuzz-multus tests/fuzz/corpus/fuzz-multus
// Seeds: tests/fuzz/corpus/fuzz-multus/: the text form, the JSON form, a NAD, a result.
#include <stdint.h>
#include <stdio.h>

#include "multus-compat/mc-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(int r, const KvErr *e) {
        if (r < 0 && r != -ENOMEM && e->msg[0] == '\0')
                __builtin_trap();
}

static void annotation(const char *text) {
        McSelection *v = NULL, *d = NULL;
        size_t n = 0;
        KvErr e = {};
        int r = mc_networks_parse(text, "pods", &v, &n, &e);
        refused(r, &e);
        if (r >= 0) {
                if (n > MC_NETWORKS_MAX)
                        __builtin_trap();
                for (size_t i = 0; i < n; i++) {
                        McCap *caps = NULL;
                        size_t nc = 0;
                        if (!v[i].name || !v[i].namespace_ || (v[i].interface && !mc_ifname_valid(v[i].interface)))
                                __builtin_trap();
                        if (mc_selection_caps(&v[i], &caps, &nc) >= 0)
                                mc_caps_free(caps, nc);
                }
        }
        KvErr de = {};
        r = mc_default_network_parse(text, "kube-system", &d, &de);
        refused(r, &de);
        if (r >= 0)
                mc_selections_free(d, 1);
        /* the first selection's cni-args merged into a NAD made of the same bytes */
        McNad *nad = NULL;
        KvErr ne = {};
        r = mc_nad_parse(text, strlen(text), &nad, &ne);
        refused(r, &ne);
        if (r >= 0) {
                char *list = NULL;
                KvErr ce = {};
                r = mc_nad_conflist(nad, n > 0 ? &v[0] : NULL, "/nonexistent", "0000:00:01.0", &list, &ce);
                refused(r, &ce);
                free(list);
                mc_nad_free(nad);
        }
        mc_selections_free(v, n);
}

/* The same bytes as an IPAMClaim (checked against a selection) and as a result whose addresses a claim records. */
static void ipamclaim(const char *text) {
        McIpamClaim *c = NULL;
        KvErr e = {};
        int r = mc_ipamclaim_parse(text, strlen(text), &c, &e);
        refused(r, &e);
        if (r >= 0) {
                if (!c->name || !c->network || c->n_ips > MC_IPAMCLAIM_IPS_MAX)
                        __builtin_trap();
                McSelection sel = { .name = "n", .namespace_ = "ns", .ips = c->ips, .n_ips = c->n_ips };
                KvErr ce = {};
                refused(mc_ipamclaim_check(c, &sel, "n", &ce), &ce);
                mc_ipamclaim_free(c);
        }
        char **ips = NULL;
        size_t n = 0;
        KvErr re = {};
        r = mc_result_iface_ips(text, strlen(text), "net1", &ips, &n, &re);
        refused(r, &re);
        if (r >= 0) {
                char *patch = NULL;
                if (mc_ipamclaim_status_format(ips, n, "p", &patch) >= 0)
                        free(patch);
                mc_strv_free(ips, n);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = strndup((const char *) data, size);
        if (!text)
                return 0;
        annotation(text);
        McConfig *c = NULL;
        KvErr e = {};
        refused(mc_config_parse(text, strlen(text), &c, &e), &e);
        mc_config_free(c);
        McStatus *s = NULL;
        size_t n = 0;
        KvErr se = {};
        if (mc_status_from_result(text, strlen(text), "ns/n", true, NULL, &s, &n, &se) >= 0) {
                char *out = NULL;
                if (mc_status_format(s, n, &out) >= 0)
                        free(out);
                mc_statuses_free(s, n);
        }
        ipamclaim(text);
        McCache *cache = NULL;
        KvErr ke = {};
        refused(mc_cache_parse(text, strlen(text), &cache, &ke), &ke);
        mc_cache_free(cache);
        free(text);
        return 0;
}
