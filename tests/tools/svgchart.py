#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Charts of kvnet's benchmarks as SVG (no dependencies beyond the standard library).

    svgchart.py cni RESULTS OUT.svg     the CNI ADD/DEL latency benchmark (tests/bench/run.sh): RESULTS holds its
                                        BENCH_CNI lines; one group per case (N attachments, workers), a bar per
                                        plugin for the ADD and the DEL median, each bar labelled with the figure
                                        the text table prints, and the kvnet / reference ratio under the group.
    svgchart.py values OUT.svg          the numbers the chart shows (one per line), to compare with the table.

Bars are on a log scale: kvnet's and the reference's times differ by an order of magnitude."""
import math
import re
import sys
from xml.sax.saxutils import escape

COLORS = {"kvnet": "#2b7bb9", "reference": "#d9822b"}
W, H = 980, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 60, 110


def parse(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("BENCH_CNI "):
                continue
            kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
            rows.append(kv)
    return rows


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x > 0 and math.isfinite(x) else None


def cni(results, out):
    rows = parse(results)
    plugins = [p for p in ("kvnet", "reference") if any(r.get("PLUGIN") == p for r in rows)]
    cases = []
    for r in rows:
        if r.get("PLUGIN") not in plugins:
            continue
        case = (int(r.get("N", "0")), int(r.get("WORKERS", "1")))
        if case not in cases:
            cases.append(case)
    cases.sort()
    by = {(r.get("PLUGIN"), int(r.get("N", "0")), int(r.get("WORKERS", "1"))): r for r in rows}
    vals = [num(r.get(k)) for r in rows for k in ("ADD_MEDIAN_MS", "DEL_MEDIAN_MS")]
    vals = [v for v in vals if v]
    if not cases or not vals:
        sys.exit("svgchart: no BENCH_CNI lines with figures in %s" % results)
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    if hi <= lo:
        hi = lo * 10
    plot_h = H - TOP - BOTTOM

    def y(v):
        return TOP + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="DejaVu Sans, sans-serif" font-size="11">' % (W, H, W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="24" font-size="15" font-weight="bold">CNI ADD and DEL latency, median per attachment '
         '(ms, log scale)</text>' % LEFT,
         '<text x="%d" y="42" fill="#555">kvnet (plugin + netd) against the reference plugins (bridge + host-local, '
         'ipMasq) in the same run; N attachments, workers in parallel</text>' % LEFT]
    d = math.log10(lo)
    while d <= math.log10(hi) + 1e-9:
        v = 10 ** d
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (LEFT, W - RIGHT, y(v), y(v)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (LEFT - 6, y(v) + 4, v))
        d += 1
    group_w = (W - LEFT - RIGHT) / len(cases)
    bars = [(p, m) for m in ("ADD", "DEL") for p in plugins]
    bar_w = min(34.0, (group_w - 20) / len(bars))
    for i, (n, w) in enumerate(cases):
        x0 = LEFT + i * group_w + (group_w - bar_w * len(bars)) / 2
        for j, (p, m) in enumerate(bars):
            r = by.get((p, n, w))
            v = num(r.get(m + "_MEDIAN_MS")) if r else None
            if v is None:
                continue
            x = x0 + j * bar_w
            o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="%s">'
                     '<title>%s %s N=%d workers=%d: %s ms</title></rect>'
                     % (x, y(v), bar_w - 3, TOP + plot_h - y(v), COLORS[p], "1" if m == "ADD" else "0.55",
                        p, m, n, w, escape(r[m + "_MEDIAN_MS"])))
            o.append('<text class="value" x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%s</text>'
                     % (x + (bar_w - 3) / 2, y(v) - 3, escape(r[m + "_MEDIAN_MS"])))
        cx = LEFT + i * group_w + group_w / 2
        o.append('<text x="%.1f" y="%d" text-anchor="middle">N=%d%s</text>'
                 % (cx, TOP + plot_h + 16, n, " ×%d" % w if w > 1 else ""))
        k, ref = by.get(("kvnet", n, w)), by.get(("reference", n, w))
        if k and ref and num(k.get("ADD_MEDIAN_MS")) and num(ref.get("ADD_MEDIAN_MS")):
            o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">ADD %.3f×</text>'
                     % (cx, TOP + plot_h + 32, num(k["ADD_MEDIAN_MS"]) / num(ref["ADD_MEDIAN_MS"])))
    lx = LEFT
    for p in plugins:
        for m, op in (("ADD", "1"), ("DEL", "0.55")):
            o.append('<rect x="%d" y="%d" width="12" height="12" fill="%s" opacity="%s"/>'
                     % (lx, H - 40, COLORS[p], op))
            o.append('<text x="%d" y="%d">%s %s</text>' % (lx + 16, H - 30, p, m))
            lx += 140
    o.append('<text x="%d" y="%d" fill="#555">ratio: kvnet / reference ADD median (below 1: kvnet is faster)'
             '</text>' % (LEFT, H - 10))
    o.append("</svg>")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def values(svg):
    with open(svg, encoding="utf-8") as f:
        for v in re.findall(r'<text class="value"[^>]*>([^<]*)</text>', f.read()):
            print(v)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "cni":
        cni(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "values":
        values(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
