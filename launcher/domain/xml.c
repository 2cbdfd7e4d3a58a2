/* SPDX-License-Identifier: Apache-2.0 */
/* A small escaping XML writer for the domain XML. Output is deterministic (fixed element and
 * attribute order) for golden tests. */
#include <stdarg.h>

#include "launcher/launcher-priv.h"

static void xml_escaped(Xml *x, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '&': fputs("&amp;", x->f); break;
                case '<': fputs("&lt;", x->f); break;
                case '>': fputs("&gt;", x->f); break;
                case '\'': fputs("&apos;", x->f); break;
                case '"': fputs("&quot;", x->f); break;
                default:
                        if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t')
                                fprintf(x->f, "&#x%x;", (unsigned char) *s);
                        else
                                fputc(*s, x->f);
                }
}

static void indent(Xml *x) {
        for (unsigned i = 0; i < x->depth; i++)
                fputs("  ", x->f);
}

/* "<name attrs..." without the end of the tag. attrs: NULL-terminated name, value pairs; values are
 * escaped. */
static void xml_start_tag(Xml *x, const char *name, va_list ap) {
        indent(x);
        fprintf(x->f, "<%s", name);
        for (;;) {
                const char *k = va_arg(ap, const char *);
                if (!k)
                        break;
                const char *v = va_arg(ap, const char *);
                fprintf(x->f, " %s='", k);
                xml_escaped(x, v);
                fputc('\'', x->f);
        }
}

static void xml_vtag(Xml *x, const char *name, bool close, va_list ap) {
        xml_start_tag(x, name, ap);
        fputs(close ? "/>\n" : ">\n", x->f);
}

void xml_open(Xml *x, const char *name, ...) {
        va_list ap;
        va_start(ap, name);
        xml_vtag(x, name, false, ap);
        va_end(ap);
        x->depth++;
}

void xml_empty(Xml *x, const char *name, ...) {
        va_list ap;
        va_start(ap, name);
        xml_vtag(x, name, true, ap);
        va_end(ap);
}

void xml_close(Xml *x, const char *name) {
        x->depth--;
        indent(x);
        fprintf(x->f, "</%s>\n", name);
}

void xml_text(Xml *x, const char *name, const char *text, ...) {
        va_list ap;
        va_start(ap, text);
        xml_start_tag(x, name, ap);
        va_end(ap);
        fputc('>', x->f);
        xml_escaped(x, text);
        fprintf(x->f, "</%s>\n", name);
}

void xml_pci_address(Xml *x, const char *addr, bool guest) {
        unsigned d, b, s, f;
        if (!addr[0] || launch_parse_pci(addr, &d, &b, &s, &f) < 0)
                return;
        char ds[8], bs[8], ss[8], fs[8];
        snprintf(ds, sizeof ds, "0x%04x", d);
        snprintf(bs, sizeof bs, "0x%02x", b);
        snprintf(ss, sizeof ss, "0x%02x", s);
        snprintf(fs, sizeof fs, "0x%x", f);
        if (guest)
                xml_empty(x, "address", "type", "pci", "domain", ds, "bus", bs, "slot", ss, "function", fs, NULL);
        else
                xml_empty(x, "address", "domain", ds, "bus", bs, "slot", ss, "function", fs, NULL);
}

void xml_boot_order(Xml *x, uint32_t order) {
        if (!order)
                return;
        char s[16];
        snprintf(s, sizeof s, "%u", order);
        xml_empty(x, "boot", "order", s, NULL);
}
