/* SPDX-License-Identifier: Apache-2.0 */
/* LaunchVmi + prepared NICs -> libvirt domain XML: the domain's identity, metadata and console here,
 * compute.c, storage.c and network.c for the rest, written through xml.c. */
#include <inttypes.h>

#include "launcher/launcher-priv.h"

static void uuid_from(const LaunchVmi *v, char out[37]) {
        const char *u = v->firmware_uuid;
        bool is_uuid = false;
        if (!u && v->uid && strlen(v->uid) == 36) {
                is_uuid = true;
                for (int i = 0; i < 36; i++) {
                        char ch = v->uid[i];
                        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                        if (dash ? ch != '-' : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
                                is_uuid = false;
                }
                if (is_uuid)
                        u = v->uid;
        }
        if (u) {
                for (int i = 0; i < 36; i++)
                        out[i] = (char) ((u[i] >= 'A' && u[i] <= 'F') ? u[i] - 'A' + 'a' : u[i]);
                out[36] = '\0';
                return;
        }
        /* derived: two FNV hashes of the identity, shaped as a version-5-like UUID */
        char key[512];
        int n = snprintf(key, sizeof key, "kvnet/%s/%s/%s", v->namespace, v->name, v->uid ? v->uid : "");
        uint64_t a = kv_hash64(key, (size_t) n), b = kv_hash64(&a, sizeof a) ^ a;
        uint8_t by[16];
        for (int i = 0; i < 8; i++) {
                by[i] = (uint8_t) (a >> (8 * i));
                by[8 + i] = (uint8_t) (b >> (8 * i));
        }
        by[6] = (by[6] & 0x0f) | 0x50;
        by[8] = (by[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", by[0], by[1], by[2],
                 by[3], by[4], by[5], by[6], by[7], by[8], by[9], by[10], by[11], by[12], by[13], by[14], by[15]);
}

int launch_domain_xml(const LaunchVmi *v, const LaunchNic *nics, size_t n_nics, const LaunchDomainOptions *o,
                      LaunchWarnings *w, char **ret, KvErr *e) {
        int r = domain_nics_check(v, nics, n_nics, e);
        if (r < 0)
                return r;
        LaunchAccel accel = o ? o->accel : LAUNCH_ACCEL_TCG;

        Xml x = {};
        x.f = open_memstream(&x.buf, &x.len);
        if (!x.f)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");

        _cleanup_free_ char *dname = launch_domain_name(v);
        char uuid[37], num[32];
        uuid_from(v, uuid);

        xml_open(&x, "domain", "type", launch_accel_to_string(accel), NULL);
        xml_text(&x, "name", dname ? dname : "", NULL);
        xml_text(&x, "uuid", uuid, NULL);
        xml_open(&x, "metadata", NULL);
        xml_open(&x, "kvnet:vmi", "xmlns:kvnet", "https://kvnet.dev/xmlns/launcher/1", NULL);
        xml_text(&x, "kvnet:namespace", v->namespace, NULL);
        xml_text(&x, "kvnet:name", v->name, NULL);
        if (v->uid)
                xml_text(&x, "kvnet:uid", v->uid, NULL);
        snprintf(num, sizeof num, "%" PRId64, v->termination_grace_seconds);
        xml_text(&x, "kvnet:terminationGracePeriodSeconds", num, NULL);
        xml_close(&x, "kvnet:vmi");
        xml_close(&x, "metadata");

        domain_xml_compute(&x, v, accel, w);

        xml_open(&x, "devices", NULL);
        if (domain_xml_disks(&x, v, o) < 0) {
                fclose(x.f);
                free(x.buf);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }

        domain_xml_nics(&x, v, nics, n_nics);
        domain_xml_hotplug_ports(&x, v);

        _cleanup_free_ char *log = NULL;
        const char *logp = o ? o->serial_log : NULL;
        if (!logp) {
                if (asprintf(&log, "%s/serial.log", o && o->vm_dir ? o->vm_dir : v->state_dir) < 0)
                        log = NULL;
                logp = log ? log : "/dev/null";
        }
        xml_open(&x, "serial", "type", "file", NULL);
        xml_empty(&x, "source", "path", logp, "append", "on", NULL);
        xml_empty(&x, "target", "port", "0", NULL);
        xml_close(&x, "serial");
        xml_open(&x, "console", "type", "file", NULL);
        xml_empty(&x, "source", "path", logp, "append", "on", NULL);
        xml_empty(&x, "target", "type", "serial", "port", "0", NULL);
        xml_close(&x, "console");
        xml_open(&x, "video", NULL);
        xml_empty(&x, "model", "type", "none", NULL);
        xml_close(&x, "video");
        xml_empty(&x, "memballoon", "model", "none", NULL);
        xml_close(&x, "devices");
        xml_close(&x, "domain");

        bool err = ferror(x.f);
        if (fclose(x.f) != 0 || err) {
                free(x.buf);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "domain: cannot build XML");
        }
        *ret = x.buf;
        return 0;
}
