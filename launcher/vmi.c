/* SPDX-License-Identifier: Apache-2.0 */
/* VirtualMachineInstance (kubevirt.io/v1) -> LaunchVmi: the one place where the object is checked. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "launcher/launcher.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ------------------------------------------------------------------ warnings */

int launch_warnings_add(LaunchWarnings *w, const char *fmt, ...) {
        if (!w)
                return 0;
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        char **n = realloc(w->items, (w->n + 1) * sizeof *n);
        if (!n) {
                free(s);
                return -ENOMEM;
        }
        w->items = n;
        w->items[w->n++] = s;
        return 0;
}

void launch_warnings_clear(LaunchWarnings *w) {
        if (!w)
                return;
        for (size_t i = 0; i < w->n; i++)
                free(w->items[i]);
        free(w->items);
        w->items = NULL;
        w->n = 0;
}

/* ------------------------------------------------------------------ scalars */

int launch_parse_quantity(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        const char *p = s;
        if (*p == '+')
                p++;
        unsigned __int128 mant = 0, scale = 1; /* value = mant / scale * mult */
        bool digits = false, dot = false;
        for (; *p; p++) {
                if (*p >= '0' && *p <= '9') {
                        digits = true;
                        if (mant > (((unsigned __int128) 1) << 100))
                                return -ERANGE;
                        mant = mant * 10 + (unsigned) (*p - '0');
                        if (dot) {
                                if (scale > (((unsigned __int128) 1) << 100))
                                        return -ERANGE;
                                scale *= 10;
                        }
                } else if (*p == '.' && !dot)
                        dot = true;
                else
                        break;
        }
        if (!digits)
                return -EINVAL;
        unsigned __int128 mult = 1;
        static const struct {
                const char *suffix;
                unsigned base, exp;
        } suffixes[] = {
                { "Ki", 1024, 1 }, { "Mi", 1024, 2 }, { "Gi", 1024, 3 }, { "Ti", 1024, 4 }, { "Pi", 1024, 5 },
                { "Ei", 1024, 6 }, { "k", 1000, 1 },  { "M", 1000, 2 },  { "G", 1000, 3 },  { "T", 1000, 4 },
                { "P", 1000, 5 },  { "E", 1000, 6 },  { "", 1, 0 },
        };
        if (*p == 'e' || *p == 'E') {
                /* decimal exponent "1e9"; a lone "E" is the exa suffix */
                const char *q = p + 1;
                if (*q == '+')
                        q++;
                if (*q >= '0' && *q <= '9') {
                        unsigned x = 0;
                        for (; *q >= '0' && *q <= '9'; q++) {
                                x = x * 10 + (unsigned) (*q - '0');
                                if (x > 30)
                                        return -ERANGE;
                        }
                        if (*q)
                                return -EINVAL;
                        for (unsigned i = 0; i < x; i++)
                                mult *= 10;
                        p = q;
                }
        }
        if (mult == 1) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                        if (streq(p, suffixes[i].suffix)) {
                                for (unsigned k = 0; k < suffixes[i].exp; k++)
                                        mult *= suffixes[i].base;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
        }
        unsigned __int128 total = mant * mult;
        if (mult != 0 && total / mult != mant)
                return -ERANGE;
        if (total % scale != 0)
                return -EINVAL; /* fractional bytes */
        total /= scale;
        if (total > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) total;
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int launch_parse_mac(const char *s, uint8_t ret[6]) {
        if (!s || strlen(s) != 17)
                return -EINVAL;
        char sep = s[2];
        if (sep != ':' && sep != '-')
                return -EINVAL;
        uint8_t m[6];
        for (int i = 0; i < 6; i++) {
                int h = hexval(s[i * 3]), l = hexval(s[i * 3 + 1]);
                if (h < 0 || l < 0)
                        return -EINVAL;
                if (i < 5 && s[i * 3 + 2] != sep)
                        return -EINVAL;
                m[i] = (uint8_t) (h << 4 | l);
        }
        if (m[0] & 1)
                return -EINVAL; /* multicast */
        memcpy(ret, m, 6);
        return 0;
}

static bool hex_field(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                int h = hexval(s[i]);
                if (h < 0)
                        return false;
                v = v << 4 | (unsigned) h;
        }
        *ret = v;
        return true;
}

int launch_parse_pci(const char *s, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot,
                     unsigned *ret_function) {
        unsigned d, b, sl, f;
        if (!s || strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
                return -EINVAL;
        if (!hex_field(s, 4, &d) || !hex_field(s + 5, 2, &b) || !hex_field(s + 8, 2, &sl) || !hex_field(s + 11, 1, &f))
                return -EINVAL;
        if (sl > 0x1f || f > 7)
                return -ERANGE;
        if (ret_domain)
                *ret_domain = d;
        if (ret_bus)
                *ret_bus = b;
        if (ret_slot)
                *ret_slot = sl;
        if (ret_function)
                *ret_function = f;
        return 0;
}

static int base64_decode(const char *in, char **ret) {
        size_t n = strlen(in);
        _cleanup_free_ char *out = malloc(n / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        unsigned acc = 0, bits = 0;
        bool pad = false;
        for (size_t i = 0; i < n; i++) {
                char ch = in[i];
                int v;
                if (ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t')
                        continue;
                if (ch == '=') {
                        pad = true;
                        continue;
                }
                if (pad)
                        return -EINVAL;
                if (ch >= 'A' && ch <= 'Z')
                        v = ch - 'A';
                else if (ch >= 'a' && ch <= 'z')
                        v = ch - 'a' + 26;
                else if (ch >= '0' && ch <= '9')
                        v = ch - '0' + 52;
                else if (ch == '+')
                        v = 62;
                else if (ch == '/')
                        v = 63;
                else
                        return -EINVAL;
                acc = (acc << 6) | (unsigned) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char) ((acc >> bits) & 0xff);
                }
        }
        if (bits >= 6)
                return -EINVAL;
        out[o] = '\0';
        if (strlen(out) != o)
                return -EINVAL; /* embedded NUL */
        *ret = TAKE_PTR(out);
        return 0;
}

/* ------------------------------------------------------------------ free */

static void disk_done(LaunchDisk *d) {
        free(d->name);
        free(d->serial);
        free(d->image);
        free(d->path);
        free(d->cloud_init.meta_data);
        free(d->cloud_init.user_data);
        free(d->cloud_init.network_config);
}

static void kv_free(LaunchKV *kv, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

LaunchVmi *launch_vmi_free(LaunchVmi *v) {
        if (!v)
                return NULL;
        free(v->name);
        free(v->namespace);
        free(v->uid);
        kv_free(v->labels, v->n_labels);
        kv_free(v->annotations, v->n_annotations);
        free(v->networks_annotation);
        free(v->cpu_model);
        free(v->firmware_uuid);
        free(v->kernel_path);
        free(v->initrd_path);
        free(v->kernel_args);
        for (size_t i = 0; i < v->n_disks; i++)
                disk_done(&v->disks[i]);
        free(v->disks);
        for (size_t i = 0; i < v->n_interfaces; i++) {
                for (size_t k = 0; k < v->interfaces[i].n_ports; k++)
                        free(v->interfaces[i].ports[k].name);
                free(v->interfaces[i].ports);
                free(v->interfaces[i].name);
        }
        free(v->interfaces);
        for (size_t i = 0; i < v->n_networks; i++) {
                free(v->networks[i].name);
                free(v->networks[i].multus_network_name);
        }
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

/* ------------------------------------------------------------------ parse context */

typedef struct Ctx {
        LaunchVmi *v;
        const LaunchOptions *o;
        KvErr *e;
        char spec[64]; /* "spec" or "spec.template.spec" */
} Ctx;

typedef enum FieldKind {
        FLD_OK,     /* handled */
        FLD_WARN,   /* known, harmless: warning */
        FLD_REJECT, /* known, not supported: error */
} FieldKind;

typedef struct Field {
        const char *key;
        FieldKind kind;
} Field;

#define NOMEM(c) kverr_set((c)->e, KV_ERR_INTERNAL, -ENOMEM, "out of memory")

static int warn(Ctx *c, const char *fmt, ...) _printf_(2, 3);
static int warn(Ctx *c, const char *fmt, ...) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (launch_warnings_add(&c->v->warnings, "%s", buf) < 0)
                return NOMEM(c);
        return 0;
}

static int invalid(Ctx *c, const char *fmt, ...) _printf_(2, 3);
static int invalid(Ctx *c, const char *fmt, ...) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return kverr_set(c->e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s", buf);
}

/* Every key of obj must be in f: FLD_OK keys are the caller's, the rest warn or fail here. */
static int check_fields(Ctx *c, json_t *obj, const char *path, const Field *f) {
        const char *key;
        json_t *val;
        json_object_foreach (obj, key, val) {
                const Field *hit = NULL;
                for (const Field *x = f; x->key; x++)
                        if (streq(x->key, key)) {
                                hit = x;
                                break;
                        }
                if (!hit) {
                        int r = warn(c, "%s.%s: unknown field, ignored", path, key);
                        if (r < 0)
                                return r;
                } else if (hit->kind == FLD_WARN) {
                        int r = warn(c, "%s.%s: not supported by kvnet-launcher, ignored", path, key);
                        if (r < 0)
                                return r;
                } else if (hit->kind == FLD_REJECT)
                        return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                         "%s.%s: not supported by kvnet-launcher", path, key);
        }
        return 0;
}

static int require_object(Ctx *c, json_t *v, const char *path) {
        if (!json_is_object(v))
                return invalid(c, "%s: must be an object, got %s", path, json_type_name(v));
        return 0;
}

static int dup_opt(Ctx *c, const char *s, char **ret) {
        if (!s)
                return 0;
        char *d = strdup(s);
        if (!d)
                return NOMEM(c);
        free(*ret);
        *ret = d;
        return 0;
}

static int get_str(Ctx *c, json_t *obj, const char *path, const char *key, bool required, char **ret) {
        const char *s = NULL;
        int r = json_get_string(obj, path, key, required, &s, c->e);
        if (r <= 0)
                return r;
        r = dup_opt(c, s, ret);
        return r < 0 ? r : 1;
}

/* DNS-1123 subdomain-ish names: they end up in file names and the libvirt domain name. */
static bool valid_k8s_name(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        if (!isalnum((unsigned char) s[0]) || !isalnum((unsigned char) s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];
                if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.'))
                        return false;
        }
        return !strstr(s, "..");
}

static int parse_string_map(Ctx *c, json_t *obj, const char *path, LaunchKV **ret, size_t *ret_n) {
        if (require_object(c, obj, path) < 0)
                return -EINVAL;
        size_t n = json_object_size(obj);
        LaunchKV *kv = calloc(n ? n : 1, sizeof *kv);
        if (!kv)
                return NOMEM(c);
        size_t i = 0;
        const char *key;
        json_t *val;
        json_object_foreach (obj, key, val) {
                if (!json_is_string(val)) {
                        kv_free(kv, i);
                        return invalid(c, "%s: '%s' must be a string, got %s", path, key, json_type_name(val));
                }
                kv[i].key = strdup(key);
                kv[i].value = strdup(json_string_value(val));
                i++;
                if (!kv[i - 1].key || !kv[i - 1].value) {
                        kv_free(kv, i);
                        return NOMEM(c);
                }
        }
        *ret = kv;
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------------ metadata */

static int parse_metadata(Ctx *c, json_t *meta, const char *path, json_t *outer_meta) {
        static const Field fields[] = {
                { "name", FLD_OK },           { "namespace", FLD_OK },         { "uid", FLD_OK },
                { "labels", FLD_OK },         { "annotations", FLD_OK },       { "generateName", FLD_OK },
                { "resourceVersion", FLD_OK }, { "generation", FLD_OK },       { "creationTimestamp", FLD_OK },
                { "ownerReferences", FLD_OK }, { "finalizers", FLD_OK },       { "managedFields", FLD_OK },
                { "selfLink", FLD_OK },       { "deletionTimestamp", FLD_OK }, { "deletionGracePeriodSeconds", FLD_OK },
                {},
        };
        LaunchVmi *v = c->v;
        int r;
        if (meta) {
                if ((r = require_object(c, meta, path)) < 0 || (r = check_fields(c, meta, path, fields)) < 0)
                        return r;
                if ((r = get_str(c, meta, path, "name", false, &v->name)) < 0 ||
                    (r = get_str(c, meta, path, "namespace", false, &v->namespace)) < 0 ||
                    (r = get_str(c, meta, path, "uid", false, &v->uid)) < 0)
                        return r;
                json_t *o = json_object_get(meta, "labels");
                char sub[128];
                if (o && !json_is_null(o)) {
                        snprintf(sub, sizeof sub, "%s.labels", path);
                        if ((r = parse_string_map(c, o, sub, &v->labels, &v->n_labels)) < 0)
                                return r;
                }
                o = json_object_get(meta, "annotations");
                if (o && !json_is_null(o)) {
                        snprintf(sub, sizeof sub, "%s.annotations", path);
                        if ((r = parse_string_map(c, o, sub, &v->annotations, &v->n_annotations)) < 0)
                                return r;
                        for (size_t i = 0; i < v->n_annotations; i++)
                                if (streq(v->annotations[i].key, "k8s.v1.cni.cncf.io/networks") &&
                                    (r = dup_opt(c, v->annotations[i].value, &v->networks_annotation)) < 0)
                                        return r;
                }
        }
        /* a VirtualMachine's own name/namespace/uid name the VMI it creates */
        if (outer_meta) {
                if ((r = check_fields(c, outer_meta, "metadata", fields)) < 0)
                        return r;
                const char *s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "name", true, &s, c->e)) < 0 ||
                    (r = dup_opt(c, s, &v->name)) < 0)
                        return r;
                s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "namespace", false, &s, c->e)) < 0 ||
                    (r = dup_opt(c, s, &v->namespace)) < 0)
                        return r;
                s = NULL;
                if ((r = json_get_string(outer_meta, "metadata", "uid", false, &s, c->e)) < 0 ||
                    (!v->uid && (r = dup_opt(c, s, &v->uid)) < 0))
                        return r;
        }
        if (!v->name)
                return invalid(c, "%s: 'name' is required", path);
        if (!valid_k8s_name(v->name, 253))
                return invalid(c, "%s: 'name' must be a lowercase DNS-1123 name, got '%s'", path, v->name);
        if (!v->namespace && (r = dup_opt(c, "default", &v->namespace)) < 0)
                return r;
        if (!valid_k8s_name(v->namespace, 63) || strchr(v->namespace, '.'))
                return invalid(c, "%s: 'namespace' must be a lowercase DNS-1123 label, got '%s'", path, v->namespace);
        return 0;
}

/* ------------------------------------------------------------------ cpu / memory / firmware */

static int parse_cpu(Ctx *c, json_t *cpu, const char *path) {
        static const Field fields[] = {
                { "cores", FLD_OK },           { "sockets", FLD_OK },   { "threads", FLD_OK },
                { "model", FLD_OK },           { "features", FLD_WARN }, { "maxSockets", FLD_WARN },
                { "dedicatedCpuPlacement", FLD_REJECT }, { "isolateEmulatorThread", FLD_REJECT },
                { "numa", FLD_REJECT },        { "realtime", FLD_REJECT }, {},
        };
        LaunchVmi *v = c->v;
        int r;
        long long x;
        if ((r = require_object(c, cpu, path)) < 0 || (r = check_fields(c, cpu, path, fields)) < 0)
                return r;
        if ((r = json_get_int(cpu, path, "cores", false, 1, 256, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->cores = (uint32_t) x;
        if ((r = json_get_int(cpu, path, "sockets", false, 1, 256, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->sockets = (uint32_t) x;
        if ((r = json_get_int(cpu, path, "threads", false, 1, 8, &x, c->e)) < 0)
                return r;
        if (r > 0)
                v->threads = (uint32_t) x;
        if ((r = get_str(c, cpu, path, "model", false, &v->cpu_model)) < 0)
                return r;
        if (v->cpu_model) {
                const char *m = v->cpu_model;
                if (!*m || strlen(m) > 64)
                        return invalid(c, "%s: 'model' must be 1..64 characters, got '%s'", path, m);
                for (const char *p = m; *p; p++)
                        if (!isalnum((unsigned char) *p) && !strchr("-_.", *p))
                                return invalid(c, "%s: 'model' has an invalid character, got '%s'", path, m);
        }
        if ((uint64_t) v->sockets * v->cores * v->threads > 512)
                return invalid(c, "%s: sockets*cores*threads must be <= 512, got %u*%u*%u", path, v->sockets,
                               v->cores, v->threads);
        return 0;
}

static int quantity_field(Ctx *c, json_t *obj, const char *path, const char *key, uint64_t *ret) {
        json_t *q = json_object_get(obj, key);
        if (!q || json_is_null(q))
                return 0;
        if (json_is_integer(q)) {
                if (json_integer_value(q) <= 0)
                        return invalid(c, "%s.%s: must be a positive quantity, got %" JSON_INTEGER_FORMAT, path, key,
                                       json_integer_value(q));
                *ret = (uint64_t) json_integer_value(q);
                return 1;
        }
        if (!json_is_string(q))
                return invalid(c, "%s.%s: must be a quantity string, got %s", path, key, json_type_name(q));
        uint64_t b;
        int r = launch_parse_quantity(json_string_value(q), &b);
        if (r < 0)
                return kverr_set(c->e, KV_ERR_INVALID_CONFIG, r,
                                 "%s.%s: invalid quantity '%s' (expected e.g. 128Mi, 1Gi, 512M or bytes)", path, key,
                                 json_string_value(q));
        *ret = b;
        return 1;
}

static int parse_memory_and_resources(Ctx *c, json_t *domain, const char *dpath) {
        static const Field mem_fields[] = {
                { "guest", FLD_OK }, { "maxGuest", FLD_WARN }, { "hugepages", FLD_REJECT }, {},
        };
        static const Field res_fields[] = {
                { "requests", FLD_OK }, { "limits", FLD_WARN }, { "overcommitGuestOverhead", FLD_WARN }, {},
        };
        static const Field req_fields[] = { { "memory", FLD_OK }, { "cpu", FLD_WARN }, {} };
        char path[128], sub[160];
        uint64_t guest = 0, req = 0;
        int r;
        json_t *mem = json_object_get(domain, "memory");
        if (mem) {
                snprintf(path, sizeof path, "%s.memory", dpath);
                if ((r = require_object(c, mem, path)) < 0 || (r = check_fields(c, mem, path, mem_fields)) < 0 ||
                    (r = quantity_field(c, mem, path, "guest", &guest)) < 0)
                        return r;
        }
        json_t *res = json_object_get(domain, "resources");
        if (res) {
                snprintf(path, sizeof path, "%s.resources", dpath);
                if ((r = require_object(c, res, path)) < 0 || (r = check_fields(c, res, path, res_fields)) < 0)
                        return r;
                json_t *rq = json_object_get(res, "requests");
                if (rq) {
                        snprintf(sub, sizeof sub, "%s.requests", path);
                        if ((r = require_object(c, rq, sub)) < 0 || (r = check_fields(c, rq, sub, req_fields)) < 0 ||
                            (r = quantity_field(c, rq, sub, "memory", &req)) < 0)
                                return r;
                }
        }
        uint64_t m = guest ? guest : req;
        if (m == 0)
                return invalid(c, "%s.memory.guest or %s.resources.requests.memory is required", dpath, dpath);
        if (m < 16ull << 20 || m > 4ull << 40)
                return invalid(c, "%s: guest memory must be 16Mi..4Ti, got %" PRIu64 " bytes", dpath, m);
        if (m % 1024 != 0) {
                m = (m + 1023) / 1024 * 1024;
                if ((r = warn(c, "%s: guest memory rounded up to %" PRIu64 " KiB", dpath, m / 1024)) < 0)
                        return r;
        }
        c->v->memory = m;
        return 0;
}

static bool valid_uuid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (hexval(s[i]) < 0)
                        return false;
        }
        return true;
}

static int abs_path_field(Ctx *c, json_t *obj, const char *path, const char *key, char **ret) {
        int r = get_str(c, obj, path, key, false, ret);
        if (r <= 0)
                return r;
        if ((*ret)[0] != '/' || strstr(*ret, "/../") || strlen(*ret) >= 4096)
                return invalid(c, "%s.%s: must be an absolute local path, got '%s'", path, key, *ret);
        if (access(*ret, R_OK) < 0) {
                if (c->o->require_files)
                        return kverr_set_errno(c->e, KV_ERR_INVALID_CONFIG, negative_errno(), "%s.%s: cannot read '%s'",
                                               path, key, *ret);
                if ((r = warn(c, "%s.%s: '%s' does not exist here", path, key, *ret)) < 0)
                        return r;
        }
        return 1;
}

static int parse_firmware(Ctx *c, json_t *fw, const char *path) {
        static const Field fields[] = {
                { "kernelBoot", FLD_OK }, { "uuid", FLD_OK }, { "serial", FLD_WARN }, { "bootloader", FLD_OK },
                { "acpi", FLD_WARN },     {},
        };
        static const Field kb_fields[] = { { "kernelArgs", FLD_OK }, { "container", FLD_OK }, {} };
        static const Field kc_fields[] = {
                { "image", FLD_OK },          { "kernelPath", FLD_OK },      { "initrdPath", FLD_OK },
                { "imagePullPolicy", FLD_WARN }, { "imagePullSecret", FLD_WARN }, {},
        };
        LaunchVmi *v = c->v;
        int r;
        char sub[160], sub2[192];
        if ((r = require_object(c, fw, path)) < 0 || (r = check_fields(c, fw, path, fields)) < 0)
                return r;
        if ((r = get_str(c, fw, path, "uuid", false, &v->firmware_uuid)) < 0)
                return r;
        if (v->firmware_uuid && !valid_uuid(v->firmware_uuid))
                return invalid(c, "%s.uuid: must be a UUID, got '%s'", path, v->firmware_uuid);
        json_t *bl = json_object_get(fw, "bootloader");
        if (bl) {
                snprintf(sub, sizeof sub, "%s.bootloader", path);
                static const Field bl_fields[] = { { "bios", FLD_OK }, { "efi", FLD_REJECT }, {} };
                if ((r = require_object(c, bl, sub)) < 0 || (r = check_fields(c, bl, sub, bl_fields)) < 0)
                        return r;
        }
        json_t *kb = json_object_get(fw, "kernelBoot");
        if (!kb)
                return 0;
        snprintf(sub, sizeof sub, "%s.kernelBoot", path);
        if ((r = require_object(c, kb, sub)) < 0 || (r = check_fields(c, kb, sub, kb_fields)) < 0)
                return r;
        if ((r = get_str(c, kb, sub, "kernelArgs", false, &v->kernel_args)) < 0)
                return r;
        json_t *kc = NULL;
        if ((r = json_get_object(kb, sub, "container", true, &kc, c->e)) < 0)
                return r;
        snprintf(sub2, sizeof sub2, "%s.container", sub);
        if ((r = check_fields(c, kc, sub2, kc_fields)) < 0)
                return r;
        const char *image = NULL;
        if ((r = json_get_string(kc, sub2, "image", false, &image, c->e)) < 0)
                return r;
        if (image && (r = warn(c, "%s.image: not pulled; kernelPath/initrdPath are local paths", sub2)) < 0)
                return r;
        if ((r = abs_path_field(c, kc, sub2, "kernelPath", &v->kernel_path)) < 0 ||
            (r = abs_path_field(c, kc, sub2, "initrdPath", &v->initrd_path)) < 0)
                return r;
        if (!v->kernel_path)
                return invalid(c, "%s: 'kernelPath' is required", sub2);
        v->kernel_boot = true;
        return 0;
}

/* ------------------------------------------------------------------ disks + volumes */

static int parse_bus(Ctx *c, json_t *obj, const char *path, LaunchDiskBus *bus) {
        const char *s = NULL;
        int r = json_get_string(obj, path, "bus", false, &s, c->e);
        if (r <= 0)
                return r;
        if (streq(s, "virtio"))
                *bus = LAUNCH_BUS_VIRTIO;
        else if (streq(s, "sata"))
                *bus = LAUNCH_BUS_SATA;
        else if (streq(s, "scsi"))
                *bus = LAUNCH_BUS_SCSI;
        else
                return invalid(c, "%s.bus: must be virtio, sata or scsi, got '%s'", path, s);
        return 0;
}

static int pci_field(Ctx *c, json_t *obj, const char *path, char out[16]) {
        const char *s = NULL;
        int r = json_get_string(obj, path, "pciAddress", false, &s, c->e);
        if (r <= 0)
                return r;
        if (launch_parse_pci(s, NULL, NULL, NULL, NULL) < 0)
                return invalid(c, "%s.pciAddress: must be DDDD:BB:SS.F (slot <= 1f, function <= 7), got '%s'", path,
                               s);
        snprintf(out, 16, "%s", s);
        for (char *p = out; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return 0;
}

static int parse_disk(Ctx *c, json_t *d, const char *path, LaunchDisk *disk) {
        static const Field fields[] = {
                { "name", FLD_OK },      { "disk", FLD_OK },           { "cdrom", FLD_OK },
                { "bootOrder", FLD_OK }, { "serial", FLD_OK },         { "lun", FLD_REJECT },
                { "dedicatedIOThread", FLD_WARN }, { "cache", FLD_WARN }, { "io", FLD_WARN },
                { "tag", FLD_WARN },     { "shareable", FLD_REJECT },  { "errorPolicy", FLD_WARN },
                { "blockSize", FLD_WARN }, {},
        };
        static const Field disk_fields[] = { { "bus", FLD_OK }, { "readonly", FLD_OK }, { "pciAddress", FLD_OK }, {} };
        static const Field cdrom_fields[] = { { "bus", FLD_OK }, { "readonly", FLD_OK }, { "tray", FLD_WARN }, {} };
        int r;
        char sub[192];
        long long x;
        if ((r = require_object(c, d, path)) < 0 || (r = check_fields(c, d, path, fields)) < 0 ||
            (r = get_str(c, d, path, "name", true, &disk->name)) < 0)
                return r;
        if ((r = json_get_int(d, path, "bootOrder", false, 1, 1000, &x, c->e)) < 0)
                return r;
        if (r > 0)
                disk->boot_order = (uint32_t) x;
        if ((r = get_str(c, d, path, "serial", false, &disk->serial)) < 0)
                return r;
        if (disk->serial) {
                if (!*disk->serial || strlen(disk->serial) > 20)
                        return invalid(c, "%s.serial: must be 1..20 characters, got '%s'", path, disk->serial);
                for (const char *p = disk->serial; *p; p++)
                        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
                                return invalid(c, "%s.serial: only [A-Za-z0-9_-] allowed, got '%s'", path,
                                               disk->serial);
        }
        json_t *dk = json_object_get(d, "disk"), *cd = json_object_get(d, "cdrom");
        if (dk && cd)
                return invalid(c, "%s: exactly one of 'disk' and 'cdrom' may be set, got both", path);
        disk->device = cd ? LAUNCH_DEVICE_CDROM : LAUNCH_DEVICE_DISK;
        disk->bus = cd ? LAUNCH_BUS_SATA : LAUNCH_BUS_VIRTIO;
        if (dk) {
                snprintf(sub, sizeof sub, "%s.disk", path);
                if ((r = require_object(c, dk, sub)) < 0 || (r = check_fields(c, dk, sub, disk_fields)) < 0 ||
                    (r = parse_bus(c, dk, sub, &disk->bus)) < 0 ||
                    (r = json_get_bool(dk, sub, "readonly", false, &disk->readonly, c->e)) < 0 ||
                    (r = pci_field(c, dk, sub, disk->pci_address)) < 0)
                        return r;
                if (disk->pci_address[0] && disk->bus != LAUNCH_BUS_VIRTIO)
                        return invalid(c, "%s.pciAddress: only valid with bus virtio", sub);
        }
        if (cd) {
                snprintf(sub, sizeof sub, "%s.cdrom", path);
                if ((r = require_object(c, cd, sub)) < 0 || (r = check_fields(c, cd, sub, cdrom_fields)) < 0 ||
                    (r = parse_bus(c, cd, sub, &disk->bus)) < 0)
                        return r;
                bool ro = true;
                if ((r = json_get_bool(cd, sub, "readonly", false, &ro, c->e)) < 0)
                        return r;
                if (!ro)
                        return invalid(c, "%s.readonly: a cdrom is always read-only, got false", sub);
                if (disk->bus == LAUNCH_BUS_VIRTIO)
                        return invalid(c, "%s.bus: a cdrom cannot use bus virtio (use sata or scsi)", sub);
                disk->readonly = true;
        }
        return 0;
}

static int resolve_image(Ctx *c, const char *path, LaunchDisk *disk) {
        const char *img = disk->image;
        int r;
        if (!*img)
                return invalid(c, "%s.image: must not be empty", path);
        if (img[0] == '/') {
                if (strstr(img, "/../") || strlen(img) >= 4096)
                        return invalid(c, "%s.image: must be a normalised absolute path, got '%s'", path, img);
                if ((r = dup_opt(c, img, &disk->path)) < 0)
                        return r;
        } else {
                /* "quay.io/kubevirt/cirros:latest" -> "cirros" */
                const char *base = strrchr(img, '/');
                base = base ? base + 1 : img;
                size_t n = strcspn(base, ":@");
                _cleanup_free_ char *name = strndup(base, n);
                if (!name)
                        return NOMEM(c);
                if (!*name || streq(name, ".") || streq(name, ".."))
                        return invalid(c, "%s.image: no image name in '%s'", path, img);
                const char *dir = c->o->image_dir ? c->o->image_dir : LAUNCH_DEFAULT_IMAGE_DIR;
                static const char *const exts[] = { "", ".qcow2", ".img", ".raw" };
                for (size_t i = 0; i < ELEMENTSOF(exts) && !disk->path; i++) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s%s", dir, name, exts[i]) < 0)
                                return NOMEM(c);
                        if (access(p, R_OK) == 0)
                                disk->path = TAKE_PTR(p);
                }
                if (!disk->path && asprintf(&disk->path, "%s/%s", dir, name) < 0) {
                        disk->path = NULL;
                        return NOMEM(c);
                }
        }
        /* format: qcow2 magic "QFI\xfb", else raw */
        _cleanup_close_ int fd = open(disk->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (c->o->require_files)
                        return kverr_set_errno(c->e, KV_ERR_INVALID_CONFIG, negative_errno(),
                                               "%s.image: cannot open '%s'", path, disk->path);
                size_t l = strlen(disk->path);
                disk->format = l > 6 && streq(disk->path + l - 6, ".qcow2") ? LAUNCH_FORMAT_QCOW2 : LAUNCH_FORMAT_RAW;
                return warn(c, "%s.image: '%s' does not exist here, assuming %s", path, disk->path,
                            disk->format == LAUNCH_FORMAT_QCOW2 ? "qcow2" : "raw");
        }
        unsigned char magic[4] = {};
        ssize_t k = read(fd, magic, sizeof magic);
        disk->format = k == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ? LAUNCH_FORMAT_QCOW2 : LAUNCH_FORMAT_RAW;
        return 0;
}

static int b64_or_plain(Ctx *c, json_t *obj, const char *path, const char *plain_key, const char *b64_key,
                        char **ret) {
        const char *p = NULL, *b = NULL;
        int r;
        if ((r = json_get_string(obj, path, plain_key, false, &p, c->e)) < 0 ||
            (r = json_get_string(obj, path, b64_key, false, &b, c->e)) < 0)
                return r;
        if (p && b)
                return invalid(c, "%s: only one of '%s' and '%s' may be set", path, plain_key, b64_key);
        if (p)
                return dup_opt(c, p, ret);
        if (b && base64_decode(b, ret) < 0)
                return invalid(c, "%s.%s: invalid base64", path, b64_key);
        return 0;
}

static int parse_volume(Ctx *c, json_t *vol, const char *path, LaunchDisk *disk) {
        static const Field fields[] = {
                { "name", FLD_OK },
                { "containerDisk", FLD_OK },
                { "cloudInitNoCloud", FLD_OK },
                { "emptyDisk", FLD_OK },
                { "persistentVolumeClaim", FLD_REJECT },
                { "dataVolume", FLD_REJECT },
                { "hostDisk", FLD_REJECT },
                { "ephemeral", FLD_REJECT },
                { "cloudInitConfigDrive", FLD_REJECT },
                { "configMap", FLD_REJECT },
                { "secret", FLD_REJECT },
                { "serviceAccount", FLD_REJECT },
                { "downwardAPI", FLD_REJECT },
                { "downwardMetrics", FLD_REJECT },
                { "sysprep", FLD_REJECT },
                { "memoryDump", FLD_REJECT },
                {},
        };
        static const Field cd_fields[] = {
                { "image", FLD_OK }, { "imagePullPolicy", FLD_WARN }, { "imagePullSecret", FLD_WARN }, { "path", FLD_WARN }, {},
        };
        static const Field ci_fields[] = {
                { "userData", FLD_OK },          { "userDataBase64", FLD_OK },          { "networkData", FLD_OK },
                { "networkDataBase64", FLD_OK }, { "userDataSecretRef", FLD_REJECT }, { "networkDataSecretRef", FLD_REJECT },
                {},
        };
        static const Field ed_fields[] = { { "capacity", FLD_OK }, {} };
        LaunchVmi *v = c->v;
        char sub[192];
        int r;
        if ((r = require_object(c, vol, path)) < 0 || (r = check_fields(c, vol, path, fields)) < 0)
                return r;
        json_t *cdk = json_object_get(vol, "containerDisk"), *ci = json_object_get(vol, "cloudInitNoCloud"),
               *ed = json_object_get(vol, "emptyDisk");
        int n = !!cdk + !!ci + !!ed;
        if (n != 1)
                return invalid(c, "%s: exactly one volume source (containerDisk, cloudInitNoCloud, emptyDisk) must be set, got %d",
                               path, n);
        if (cdk) {
                snprintf(sub, sizeof sub, "%s.containerDisk", path);
                disk->kind = LAUNCH_VOLUME_CONTAINER_DISK;
                if ((r = require_object(c, cdk, sub)) < 0 || (r = check_fields(c, cdk, sub, cd_fields)) < 0 ||
                    (r = get_str(c, cdk, sub, "image", true, &disk->image)) < 0)
                        return r;
                return resolve_image(c, sub, disk);
        }
        if (ed) {
                snprintf(sub, sizeof sub, "%s.emptyDisk", path);
                disk->kind = LAUNCH_VOLUME_EMPTY_DISK;
                disk->format = LAUNCH_FORMAT_RAW;
                if ((r = require_object(c, ed, sub)) < 0 || (r = check_fields(c, ed, sub, ed_fields)) < 0)
                        return r;
                if ((r = quantity_field(c, ed, sub, "capacity", &disk->capacity)) < 0)
                        return r;
                if (r == 0)
                        return invalid(c, "%s: 'capacity' is required", sub);
                disk->path = launch_volume_file(v->state_dir, disk);
                return disk->path ? 0 : NOMEM(c);
        }
        snprintf(sub, sizeof sub, "%s.cloudInitNoCloud", path);
        disk->kind = LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD;
        disk->format = LAUNCH_FORMAT_RAW;
        if ((r = require_object(c, ci, sub)) < 0 || (r = check_fields(c, ci, sub, ci_fields)) < 0 ||
            (r = b64_or_plain(c, ci, sub, "userData", "userDataBase64", &disk->cloud_init.user_data)) < 0 ||
            (r = b64_or_plain(c, ci, sub, "networkData", "networkDataBase64", &disk->cloud_init.network_config)) < 0)
                return r;
        if (!disk->cloud_init.user_data && !disk->cloud_init.network_config)
                return invalid(c, "%s: userData/userDataBase64 or networkData/networkDataBase64 is required", sub);
        disk->path = launch_volume_file(v->state_dir, disk);
        return disk->path ? 0 : NOMEM(c);
}

static int parse_disks_and_volumes(Ctx *c, json_t *devices, const char *dpath, json_t *spec) {
        LaunchVmi *v = c->v;
        json_t *disks = NULL, *vols = NULL;
        char path[192], spath[80];
        int r;
        snprintf(spath, sizeof spath, "%s", c->spec);
        if (devices && (r = json_get_array(devices, dpath, "disks", false, &disks, c->e)) < 0)
                return r;
        if ((r = json_get_array(spec, spath, "volumes", false, &vols, c->e)) < 0)
                return r;
        size_t nd = disks ? json_array_size(disks) : 0, nv = vols ? json_array_size(vols) : 0;
        v->disks = calloc(nd + nv + 1, sizeof *v->disks);
        if (!v->disks)
                return NOMEM(c);
        for (size_t i = 0; i < nd; i++) {
                snprintf(path, sizeof path, "%s.disks[%zu]", dpath, i);
                LaunchDisk *d = &v->disks[v->n_disks++];
                if ((r = parse_disk(c, json_array_get(disks, i), path, d)) < 0)
                        return r;
                for (size_t k = 0; k + 1 < v->n_disks; k++)
                        if (streq(v->disks[k].name, d->name))
                                return invalid(c, "%s.name: duplicate disk name '%s'", path, d->name);
        }
        bool *used = calloc(nd + 1, sizeof *used);
        if (!used)
                return NOMEM(c);
        _cleanup_free_ bool *used_p = used;
        /* names of all volumes first, so duplicates are reported before anything else */
        for (size_t i = 0; i < nv; i++) {
                json_t *vol = json_array_get(vols, i);
                snprintf(path, sizeof path, "%s.volumes[%zu]", spath, i);
                if ((r = require_object(c, vol, path)) < 0)
                        return r;
                const char *name = NULL;
                if ((r = json_get_string(vol, path, "name", true, &name, c->e)) < 0)
                        return r;
                for (size_t k = 0; k < i; k++) {
                        const char *o = json_string_value(json_object_get(json_array_get(vols, k), "name"));
                        if (streq(o, name))
                                return invalid(c, "%s.name: duplicate volume name '%s'", path, name);
                }
                LaunchDisk *d = NULL;
                for (size_t k = 0; k < nd; k++)
                        if (streq(v->disks[k].name, name)) {
                                d = &v->disks[k];
                                used[k] = true;
                        }
                if (!d) {
                        /* KubeVirt adds a disk for a volume that has none */
                        d = &v->disks[v->n_disks++];
                        d->device = LAUNCH_DEVICE_DISK;
                        d->bus = LAUNCH_BUS_VIRTIO;
                        if ((r = dup_opt(c, name, &d->name)) < 0)
                                return r;
                        if ((r = warn(c, "%s: no disk named '%s', adding a virtio disk", path, name)) < 0)
                                return r;
                }
                if ((r = parse_volume(c, vol, path, d)) < 0)
                        return r;
                if (d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD && d->device == LAUNCH_DEVICE_DISK)
                        d->readonly = false;
        }
        for (size_t k = 0; k < nd; k++)
                if (!used[k])
                        return invalid(c, "%s.disks[%zu]: disk '%s' has no volume of that name in %s.volumes", dpath, k,
                                       v->disks[k].name, spath);
        return 0;
}

/* ------------------------------------------------------------------ interfaces + networks */

static int parse_network(Ctx *c, json_t *n, const char *path, LaunchNetwork *net) {
        static const Field fields[] = { { "name", FLD_OK }, { "pod", FLD_OK }, { "multus", FLD_OK }, {} };
        static const Field pod_fields[] = { { "vmNetworkCIDR", FLD_WARN }, { "vmIPv6NetworkCIDR", FLD_WARN }, {} };
        static const Field multus_fields[] = { { "networkName", FLD_OK }, { "default", FLD_OK }, {} };
        char sub[192];
        int r;
        if ((r = require_object(c, n, path)) < 0 || (r = check_fields(c, n, path, fields)) < 0 ||
            (r = get_str(c, n, path, "name", true, &net->name)) < 0)
                return r;
        json_t *pod = json_object_get(n, "pod"), *mu = json_object_get(n, "multus");
        if (!pod && !mu)
                return invalid(c, "%s: one of 'pod' and 'multus' must be set for network '%s'", path, net->name);
        if (pod && mu)
                return invalid(c, "%s: only one of 'pod' and 'multus' may be set for network '%s'", path, net->name);
        if (pod) {
                snprintf(sub, sizeof sub, "%s.pod", path);
                net->kind = LAUNCH_NET_POD;
                return (r = require_object(c, pod, sub)) < 0 ? r : check_fields(c, pod, sub, pod_fields);
        }
        snprintf(sub, sizeof sub, "%s.multus", path);
        net->kind = LAUNCH_NET_MULTUS;
        if ((r = require_object(c, mu, sub)) < 0 || (r = check_fields(c, mu, sub, multus_fields)) < 0 ||
            (r = get_str(c, mu, sub, "networkName", true, &net->multus_network_name)) < 0 ||
            (r = json_get_bool(mu, sub, "default", false, &net->multus_default, c->e)) < 0)
                return r;
        const char *nn = net->multus_network_name;
        const char *slash = strchr(nn, '/');
        if (!*nn || (slash && (slash == nn || !slash[1] || strchr(slash + 1, '/'))))
                return invalid(c, "%s.networkName: must be 'name' or 'namespace/name', got '%s'", sub, nn);
        return 0;
}

static int parse_ports(Ctx *c, json_t *ports, const char *path, LaunchInterface *ifc) {
        static const Field fields[] = { { "name", FLD_OK }, { "port", FLD_OK }, { "protocol", FLD_OK }, {} };
        char sub[224];
        int r;
        size_t n = json_array_size(ports);
        ifc->ports = calloc(n + 1, sizeof *ifc->ports);
        if (!ifc->ports)
                return NOMEM(c);
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_array_get(ports, i);
                LaunchPort *pt = &ifc->ports[ifc->n_ports++];
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                long long x;
                const char *proto = NULL;
                if ((r = require_object(c, p, sub)) < 0 || (r = check_fields(c, p, sub, fields)) < 0 ||
                    (r = get_str(c, p, sub, "name", false, &pt->name)) < 0 ||
                    (r = json_get_int(p, sub, "port", true, 1, 65535, &x, c->e)) < 0 ||
                    (r = json_get_string(p, sub, "protocol", false, &proto, c->e)) < 0)
                        return r;
                pt->port = (uint16_t) x;
                if (!proto || streq(proto, "TCP"))
                        pt->protocol = LAUNCH_PROTO_TCP;
                else if (streq(proto, "UDP"))
                        pt->protocol = LAUNCH_PROTO_UDP;
                else
                        return invalid(c, "%s.protocol: must be TCP or UDP, got '%s'", sub, proto);
                for (size_t k = 0; k + 1 < ifc->n_ports; k++)
                        if (ifc->ports[k].port == pt->port && ifc->ports[k].protocol == pt->protocol)
                                return invalid(c, "%s.port: duplicate port %u/%s", sub, pt->port, proto ? proto : "TCP");
        }
        return 0;
}

static int parse_interface(Ctx *c, json_t *i, const char *path, LaunchInterface *ifc) {
        static const Field fields[] = {
                { "name", FLD_OK },      { "model", FLD_OK },        { "bridge", FLD_OK },      { "masquerade", FLD_OK },
                { "sriov", FLD_OK },     { "ports", FLD_OK },        { "macAddress", FLD_OK },  { "pciAddress", FLD_OK },
                { "bootOrder", FLD_OK }, { "slirp", FLD_REJECT },    { "macvtap", FLD_REJECT }, { "passt", FLD_REJECT },
                { "binding", FLD_REJECT }, { "dhcpOptions", FLD_WARN }, { "tag", FLD_WARN },    { "acpiIndex", FLD_WARN },
                { "state", FLD_OK },     {},
        };
        static const struct {
                const char *key;
                LaunchBinding b;
        } bindings[] = {
                { "bridge", LAUNCH_BINDING_BRIDGE },
                { "masquerade", LAUNCH_BINDING_MASQUERADE },
                { "sriov", LAUNCH_BINDING_SRIOV },
        };
        static const char *const models[] = { "virtio", "e1000", "e1000e", "igb", "rtl8139", "ne2k_pci", "pcnet" };
        char sub[192];
        int r;
        long long x;
        if ((r = require_object(c, i, path)) < 0 || (r = check_fields(c, i, path, fields)) < 0 ||
            (r = get_str(c, i, path, "name", true, &ifc->name)) < 0)
                return r;
        int n = 0;
        for (size_t k = 0; k < ELEMENTSOF(bindings); k++) {
                json_t *b = json_object_get(i, bindings[k].key);
                if (!b)
                        continue;
                snprintf(sub, sizeof sub, "%s.%s", path, bindings[k].key);
                if ((r = require_object(c, b, sub)) < 0)
                        return r;
                if (json_object_size(b) > 0 && (r = warn(c, "%s: options ignored", sub)) < 0)
                        return r;
                if (n++ > 0)
                        return invalid(c, "%s: interface '%s' has more than one binding method", path, ifc->name);
                ifc->binding = bindings[k].b;
        }
        if (n == 0) {
                /* an unknown object-valued key where a binding would be is an unknown binding */
                static const char *const known_objs[] = { "dhcpOptions", "ports" };
                const char *key;
                json_t *val;
                json_object_foreach (i, key, val) {
                        bool known = false;
                        for (size_t k = 0; k < ELEMENTSOF(known_objs); k++)
                                known = known || streq(key, known_objs[k]);
                        if (json_is_object(val) && !known)
                                return invalid(c, "%s.%s: unknown binding method for interface '%s' (supported: bridge, masquerade, sriov)",
                                               path, key, ifc->name);
                }
                ifc->binding = LAUNCH_BINDING_BRIDGE;
                if ((r = warn(c, "%s: interface '%s' has no binding method, using bridge (KubeVirt's default)", path,
                              ifc->name)) < 0)
                        return r;
        }
        const char *s = NULL;
        if ((r = json_get_string(i, path, "state", false, &s, c->e)) < 0)
                return r;
        if (s && !streq(s, "up"))
                return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                 "%s.state: '%s' not supported by kvnet-launcher (only 'up')", path, s);
        s = NULL;
        if ((r = json_get_string(i, path, "model", false, &s, c->e)) < 0)
                return r;
        snprintf(ifc->model, sizeof ifc->model, "virtio");
        if (s) {
                bool ok = false;
                for (size_t k = 0; k < ELEMENTSOF(models); k++)
                        ok = ok || streq(s, models[k]);
                if (!ok)
                        return invalid(c,
                                       "%s.model: must be one of virtio, e1000, e1000e, igb, rtl8139, ne2k_pci, pcnet, got '%s'",
                                       path, s);
                if (ifc->binding == LAUNCH_BINDING_SRIOV)
                        return invalid(c, "%s.model: not applicable to an sriov interface", path);
                snprintf(ifc->model, sizeof ifc->model, "%s", s);
        }
        s = NULL;
        if ((r = json_get_string(i, path, "macAddress", false, &s, c->e)) < 0)
                return r;
        if (s) {
                if (launch_parse_mac(s, ifc->mac) < 0)
                        return invalid(c, "%s.macAddress: must be a unicast MAC like 02:00:00:00:00:01, got '%s'", path,
                                       s);
                ifc->has_mac = true;
        }
        if ((r = pci_field(c, i, path, ifc->pci_address)) < 0)
                return r;
        if ((r = json_get_int(i, path, "bootOrder", false, 1, 1000, &x, c->e)) < 0)
                return r;
        if (r > 0)
                ifc->boot_order = (uint32_t) x;
        json_t *ports = NULL;
        if ((r = json_get_array(i, path, "ports", false, &ports, c->e)) < 0)
                return r;
        if (ports && json_array_size(ports) > 0) {
                if (ifc->binding != LAUNCH_BINDING_MASQUERADE)
                        return invalid(c, "%s.ports: only supported with the masquerade binding (interface '%s')", path,
                                       ifc->name);
                snprintf(sub, sizeof sub, "%s.ports", path);
                if ((r = parse_ports(c, ports, sub, ifc)) < 0)
                        return r;
        }
        return 0;
}

static int add_default_pod_network(Ctx *c, const char *dpath) {
        LaunchVmi *v = c->v;
        int r;
        v->networks = calloc(1, sizeof *v->networks);
        v->interfaces = calloc(1, sizeof *v->interfaces);
        if (!v->networks || !v->interfaces)
                return NOMEM(c);
        v->n_networks = v->n_interfaces = 1;
        v->networks[0].kind = LAUNCH_NET_POD;
        v->interfaces[0].binding = LAUNCH_BINDING_BRIDGE;
        snprintf(v->interfaces[0].model, sizeof v->interfaces[0].model, "virtio");
        if ((r = dup_opt(c, "default", &v->networks[0].name)) < 0 ||
            (r = dup_opt(c, "default", &v->interfaces[0].name)) < 0)
                return r;
        return warn(c, "%s.interfaces: none given, attaching the pod network 'default' with bridge binding", dpath);
}

static int parse_interfaces_and_networks(Ctx *c, json_t *devices, const char *dpath, json_t *spec) {
        LaunchVmi *v = c->v;
        json_t *ifs = NULL, *nets = NULL;
        char path[192];
        int r;
        bool autoattach = true;
        if (devices && ((r = json_get_array(devices, dpath, "interfaces", false, &ifs, c->e)) < 0 ||
                        (r = json_get_bool(devices, dpath, "autoattachPodInterface", false, &autoattach, c->e)) < 0))
                return r;
        if ((r = json_get_array(spec, c->spec, "networks", false, &nets, c->e)) < 0)
                return r;
        size_t ni = ifs ? json_array_size(ifs) : 0, nn = nets ? json_array_size(nets) : 0;
        if (ni == 0 && nn == 0)
                return autoattach ? add_default_pod_network(c, dpath) : 0;

        v->networks = calloc(nn + 1, sizeof *v->networks);
        v->interfaces = calloc(ni + 1, sizeof *v->interfaces);
        if (!v->networks || !v->interfaces)
                return NOMEM(c);
        ssize_t pod = -1, multus_default = -1;
        for (size_t k = 0; k < nn; k++) {
                snprintf(path, sizeof path, "%s.networks[%zu]", c->spec, k);
                LaunchNetwork *n = &v->networks[v->n_networks++];
                if ((r = parse_network(c, json_array_get(nets, k), path, n)) < 0)
                        return r;
                for (size_t j = 0; j < k; j++)
                        if (streq(v->networks[j].name, n->name))
                                return invalid(c, "%s.name: duplicate network name '%s'", path, n->name);
                if (n->kind == LAUNCH_NET_POD) {
                        if (pod >= 0)
                                return invalid(c, "%s: more than one pod network ('%s' and '%s')", path,
                                               v->networks[pod].name, n->name);
                        pod = (ssize_t) k;
                }
                if (n->kind == LAUNCH_NET_MULTUS && n->multus_default) {
                        if (multus_default >= 0)
                                return invalid(c, "%s.multus.default: more than one default multus network", path);
                        multus_default = (ssize_t) k;
                }
        }
        if (pod >= 0 && multus_default >= 0)
                return invalid(c, "%s.networks[%zd]: a multus default network replaces the pod network; '%s' and '%s' are both set",
                               c->spec, multus_default, v->networks[pod].name, v->networks[multus_default].name);

        bool *net_used = calloc(nn + 1, sizeof *net_used);
        if (!net_used)
                return NOMEM(c);
        _cleanup_free_ bool *net_used_p = net_used;
        for (size_t k = 0; k < ni; k++) {
                snprintf(path, sizeof path, "%s.interfaces[%zu]", dpath, k);
                LaunchInterface *ifc = &v->interfaces[v->n_interfaces++];
                if ((r = parse_interface(c, json_array_get(ifs, k), path, ifc)) < 0)
                        return r;
                for (size_t j = 0; j < k; j++)
                        if (streq(v->interfaces[j].name, ifc->name))
                                return invalid(c, "%s.name: duplicate interface name '%s'", path, ifc->name);
                size_t j;
                for (j = 0; j < v->n_networks; j++)
                        if (streq(v->networks[j].name, ifc->name))
                                break;
                if (j == v->n_networks)
                        return invalid(c, "%s: interface '%s' has no network of that name in %s.networks", path,
                                       ifc->name, c->spec);
                ifc->network = j;
                net_used[j] = true;
                const LaunchNetwork *n = &v->networks[j];
                if (ifc->binding == LAUNCH_BINDING_MASQUERADE && n->kind != LAUNCH_NET_POD)
                        return invalid(c, "%s.masquerade: only allowed on the pod network; '%s' is a multus network",
                                       path, n->name);
                if (ifc->binding == LAUNCH_BINDING_SRIOV && n->kind == LAUNCH_NET_POD)
                        return invalid(c, "%s.sriov: not allowed on the pod network '%s' (use a multus network)", path,
                                       n->name);
                if (ifc->has_mac)
                        for (size_t q = 0; q < k; q++)
                                if (v->interfaces[q].has_mac && memcmp(v->interfaces[q].mac, ifc->mac, 6) == 0)
                                        return invalid(c, "%s.macAddress: same MAC as interface '%s'", path,
                                                       v->interfaces[q].name);
        }
        for (size_t j = 0; j < nn; j++)
                if (!net_used[j])
                        return invalid(c, "%s.networks[%zu]: network '%s' is not used by any interface", c->spec, j,
                                       v->networks[j].name);
        return 0;
}

/* ------------------------------------------------------------------ spec */

static int parse_domain(Ctx *c, json_t *domain, const char *dpath, json_t *spec) {
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
        static const Field feat_fields[] = {
                { "acpi", FLD_OK }, { "apic", FLD_WARN }, { "hyperv", FLD_WARN }, { "smm", FLD_WARN },
                { "kvm", FLD_WARN }, { "pvspinlock", FLD_WARN }, {},
        };
        char path[128];
        int r;
        if ((r = require_object(c, domain, dpath)) < 0 || (r = check_fields(c, domain, dpath, fields)) < 0)
                return r;
        json_t *x;
        if ((x = json_object_get(domain, "cpu"))) {
                snprintf(path, sizeof path, "%s.cpu", dpath);
                if ((r = parse_cpu(c, x, path)) < 0)
                        return r;
        }
        if ((r = parse_memory_and_resources(c, domain, dpath)) < 0)
                return r;
        if ((x = json_object_get(domain, "firmware"))) {
                snprintf(path, sizeof path, "%s.firmware", dpath);
                if ((r = parse_firmware(c, x, path)) < 0)
                        return r;
        }
        if ((x = json_object_get(domain, "features"))) {
                snprintf(path, sizeof path, "%s.features", dpath);
                if ((r = require_object(c, x, path)) < 0 || (r = check_fields(c, x, path, feat_fields)) < 0)
                        return r;
                json_t *acpi = json_object_get(x, "acpi");
                bool on = true;
                if (acpi && ((r = require_object(c, acpi, path)) < 0 ||
                             (r = json_get_bool(acpi, path, "enabled", false, &on, c->e)) < 0))
                        return r;
                if (!on)
                        return kverr_set(c->e, KV_ERR_UNSUPPORTED_FIELD, -EOPNOTSUPP,
                                         "%s.acpi.enabled: false not supported by kvnet-launcher (ACPI is needed for graceful shutdown)",
                                         path);
        }
        json_t *devices = json_object_get(domain, "devices");
        snprintf(path, sizeof path, "%s.devices", dpath);
        if (devices && ((r = require_object(c, devices, path)) < 0 || (r = check_fields(c, devices, path, dev_fields)) < 0))
                return r;
        if ((r = parse_disks_and_volumes(c, devices, path, spec)) < 0)
                return r;
        if ((r = parse_interfaces_and_networks(c, devices, path, spec)) < 0)
                return r;
        /* boot orders are unique over disks and interfaces */
        LaunchVmi *v = c->v;
        for (size_t i = 0; i < v->n_disks + v->n_interfaces; i++) {
                uint32_t bi = i < v->n_disks ? v->disks[i].boot_order : v->interfaces[i - v->n_disks].boot_order;
                const char *ni = i < v->n_disks ? v->disks[i].name : v->interfaces[i - v->n_disks].name;
                for (size_t k = 0; bi && k < i; k++) {
                        uint32_t bk = k < v->n_disks ? v->disks[k].boot_order : v->interfaces[k - v->n_disks].boot_order;
                        if (bk == bi)
                                return invalid(c, "%s: bootOrder %u used by both '%s' and '%s'", path, bi,
                                               k < v->n_disks ? v->disks[k].name : v->interfaces[k - v->n_disks].name,
                                               ni);
                }
        }
        return 0;
}

static int parse_spec(Ctx *c, json_t *spec) {
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
        if ((r = require_object(c, spec, c->spec)) < 0 || (r = check_fields(c, spec, c->spec, fields)) < 0)
                return r;
        if ((r = json_get_int(spec, c->spec, "terminationGracePeriodSeconds", false, 0, 86400, &x, c->e)) < 0)
                return r;
        v->termination_grace_seconds = r > 0 ? x : 30;
        if ((r = get_str(c, spec, c->spec, "hostname", false, &v->hostname)) < 0 ||
            (r = get_str(c, spec, c->spec, "subdomain", false, &v->subdomain)) < 0)
                return r;
        if (v->hostname && (!valid_k8s_name(v->hostname, 63) || strchr(v->hostname, '.')))
                return invalid(c, "%s.hostname: must be a DNS-1123 label, got '%s'", c->spec, v->hostname);
        if (v->subdomain && (!valid_k8s_name(v->subdomain, 63) || strchr(v->subdomain, '.')))
                return invalid(c, "%s.subdomain: must be a DNS-1123 label, got '%s'", c->spec, v->subdomain);
        if (!v->hostname) {
                /* the name may hold dots; the hostname is its first label */
                size_t n = strcspn(v->name, ".");
                v->hostname = strndup(v->name, n > 63 ? 63 : n);
                if (!v->hostname)
                        return NOMEM(c);
        }
        json_t *domain = NULL;
        if ((r = json_get_object(spec, c->spec, "domain", true, &domain, c->e)) < 0)
                return r;
        snprintf(dpath, sizeof dpath, "%s.domain", c->spec);
        return parse_domain(c, domain, dpath, spec);
}

static int build_cloud_init(Ctx *c) {
        LaunchVmi *v = c->v;
        for (size_t i = 0; i < v->n_disks; i++) {
                LaunchDisk *d = &v->disks[i];
                if (d->kind != LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD)
                        continue;
                const char *id = v->uid ? v->uid : v->name;
                int r;
                if (v->subdomain)
                        r = asprintf(&d->cloud_init.meta_data, "instance-id: %s\nlocal-hostname: %s.%s.%s.svc\n", id,
                                     v->hostname, v->subdomain, v->namespace);
                else
                        r = asprintf(&d->cloud_init.meta_data, "instance-id: %s\nlocal-hostname: %s\n", id,
                                     v->hostname);
                if (r < 0) {
                        d->cloud_init.meta_data = NULL;
                        return NOMEM(c);
                }
        }
        return 0;
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
        Ctx c = { .v = v, .o = o ? o : &defaults, .e = e };
        snprintf(c.spec, sizeof c.spec, "spec");
        int r;
        if (!json_is_object(root))
                return invalid(&c, "input: must be an object, got %s", json_type_name(root));
        if ((r = check_fields(&c, root, "", top_fields)) < 0)
                return r;
        const char *api = NULL, *kind = NULL;
        if ((r = json_get_string(root, "input", "apiVersion", true, &api, e)) < 0 ||
            (r = json_get_string(root, "input", "kind", true, &kind, e)) < 0)
                return r;
        if (streq(api, "kubevirt.io/v1alpha3")) {
                if ((r = warn(&c, "apiVersion: 'kubevirt.io/v1alpha3' read as kubevirt.io/v1")) < 0)
                        return r;
        } else if (!streq(api, "kubevirt.io/v1"))
                return invalid(&c, "apiVersion: must be kubevirt.io/v1, got '%s'", api);
        bool is_vm = streq(kind, "VirtualMachine");
        if (!is_vm && !streq(kind, "VirtualMachineInstance"))
                return invalid(&c, "kind: must be VirtualMachineInstance or VirtualMachine, got '%s'", kind);

        json_t *meta = NULL, *spec = NULL;
        if ((r = json_get_object(root, "input", "metadata", true, &meta, e)) < 0 ||
            (r = json_get_object(root, "input", "spec", true, &spec, e)) < 0)
                return r;
        if (is_vm) {
                json_t *tmpl = NULL, *tmeta = NULL;
                if ((r = check_fields(&c, spec, "spec", vm_spec_fields)) < 0 ||
                    (r = json_get_object(spec, "spec", "template", true, &tmpl, e)) < 0 ||
                    (r = check_fields(&c, tmpl, "spec.template", tmpl_fields)) < 0 ||
                    (r = json_get_object(tmpl, "spec.template", "metadata", false, &tmeta, e)) < 0 ||
                    (r = json_get_object(tmpl, "spec.template", "spec", true, &spec, e)) < 0)
                        return r;
                snprintf(c.spec, sizeof c.spec, "spec.template.spec");
                if ((r = parse_metadata(&c, tmeta, "spec.template.metadata", meta)) < 0)
                        return r;
        } else if ((r = parse_metadata(&c, meta, "metadata", NULL)) < 0)
                return r;

        v->state_dir = launch_vmi_dir(c.o->state_dir, v);
        if (!v->state_dir)
                return NOMEM(&c);
        if ((r = parse_spec(&c, spec)) < 0 || (r = build_cloud_init(&c)) < 0)
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
                if (k && (streq(k, "VirtualMachineInstance") || streq(k, "VirtualMachine"))) {
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

char *launch_volume_file(const char *vm_dir, const LaunchDisk *d) {
        const char *suffix = d->kind == LAUNCH_VOLUME_EMPTY_DISK              ? "empty.raw"
                             : d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD ? "cidata.iso"
                                                                           : NULL;
        char *p = NULL;
        if (!suffix || asprintf(&p, "%s/%s-%s", vm_dir, d->name, suffix) < 0)
                return NULL;
        return p;
}

int launch_cloudinit_write_files(const LaunchDisk *d, const char *dir) {
        if (d->kind != LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD)
                return -EINVAL;
        const struct {
                const char *name, *data;
        } files[] = {
                { "meta-data", d->cloud_init.meta_data },
                { "user-data", d->cloud_init.user_data ? d->cloud_init.user_data : "#cloud-config\n" },
                { "network-config", d->cloud_init.network_config },
        };
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                if (!files[i].data)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, files[i].name) < 0)
                        return -ENOMEM;
                r = write_file_atomic(p, files[i].data, strlen(files[i].data), false);
                if (r < 0)
                        return r;
        }
        return 0;
}
