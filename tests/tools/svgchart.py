#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Charts of kvnet's benchmarks as SVG (no dependencies beyond the standard library).

    svgchart.py cni RESULTS OUT.svg     the CNI ADD/DEL latency benchmark (tests/bench/run.sh): RESULTS holds its
                                        BENCH_CNI lines; one group per case (N attachments, workers), a bar per
                                        plugin for the ADD and the DEL median, each bar labelled with the figure
                                        the text table prints, and the kvnet / reference ratio under the group.
    svgchart.py migration LOG OUTDIR    the migration benchmark (tests/bench/migration.sh): LOG holds one JSON line per
                                        migration (kind, migration, result, flowmon's report); per migration a
                                        timeline of the client's pings (replies, and each gap of lost ones, the
                                        longest marked) with QEMU's downtime and the guest's pause, and one chart of
                                        the loss-based outage (lost pings x interval) per binding against bare QEMU.
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


def svg_open(w, h):
    return ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="DejaVu Sans, sans-serif" font-size="11">' % (w, h, w, h),
            '<rect width="100%" height="100%" fill="white"/>']


def figure(result, key):
    m = re.search(r"\b%s=([0-9.]+)" % key, result or "")
    return m.group(1) if m else None


def timeline(rec, out):
    ping = (rec.get("flowmon") or {}).get("ping") or {}
    iv = ping.get("intervalMs") or 10
    window = max(int(ping.get("sent") or 0) * iv, 1)
    lost = [(int(a), int(b)) for a, b in ping.get("lostTimesMs") or []]
    w, h, x0, x1 = 980, 200, 40, 940

    def x(ms):
        return x0 + min(max(ms, 0), window) / window * (x1 - x0)

    o = svg_open(w, h)
    o.append('<text x="%d" y="22" font-size="14" font-weight="bold">Migration %s (%s): the client\'s pings every %d ms'
             '</text>' % (x0, escape(str(rec.get("migration", ""))), escape(str(rec.get("kind", ""))), iv))
    o.append('<rect x="%d" y="60" width="%d" height="34" fill="#5aa25a"><title>replies</title></rect>' % (x0, x1 - x0))
    longest = max(lost, key=lambda g: g[1]) if lost else None
    for start, dur in lost:
        o.append('<rect x="%.1f" y="56" width="%.1f" height="42" fill="#c0392b"><title>%d ms lost from %d ms'
                 '</title></rect>' % (x(start), max(x(start + dur) - x(start), 1.5), dur, start))
    if longest:
        cx = (x(longest[0]) + x(longest[0] + longest[1])) / 2
        o.append('<line x1="%.1f" x2="%.1f" y1="98" y2="116" stroke="#c0392b"/>' % (cx, cx))
        o.append('<text x="%.1f" y="128" text-anchor="middle" fill="#c0392b">longest gap <tspan class="value">%d'
                 '</tspan> ms at %.2f s</text>' % (cx, longest[1], longest[0] / 1000))
    for t in range(0, window + 1, 1000):
        o.append('<text x="%.1f" y="52" text-anchor="middle" fill="#777" font-size="9">%d s</text>' % (x(t), t // 1000))
    qd, pause = figure(rec.get("result"), "QEMU_DOWNTIME_MS"), figure(rec.get("result"), "SWITCH_PAUSE_MS")
    facts = ["%d pings, %d lost: loss-based outage %d ms" % (int(ping.get("sent") or 0), int(ping.get("lost") or 0),
                                                             int(ping.get("lost") or 0) * iv)]
    if qd:
        facts.append("QEMU downtime %s ms" % qd)
    if pause:
        facts.append("guest paused %s ms (source pause to target resume)" % pause)
    facts.append("migration %s" % ("completed" if rec.get("rc", 1) == 0 else "FAILED"))
    o.append('<text x="%d" y="160">%s</text>' % (x0, escape("; ".join(facts))))
    o.append('<text x="%d" y="182" fill="#555">green: replies came; red: pings lost (each gap from its first lost ping '
             'to the next reply)</text>' % x0)
    o.append("</svg>")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def outages(recs, out):
    kinds = [k for k in ("bridge", "masquerade", "bare") if any(r.get("kind") == k for r in recs)]
    kinds += sorted({r.get("kind") for r in recs} - set(kinds) - {None})
    data = {}
    for k in kinds:
        v = []
        for r in recs:
            ping = (r.get("flowmon") or {}).get("ping") or {}
            if r.get("kind") == k and ping:
                v.append(int(ping.get("lost") or 0) * (ping.get("intervalMs") or 10))
        data[k] = sorted(v)
    top = max([max(v) for v in data.values() if v] + [10])
    top = int(math.ceil(top / 50.0) * 50)
    w, h, left, bottom, plot_h = 760, 360, 70, 300, 230
    o = svg_open(w, h)
    o.append('<text x="%d" y="24" font-size="14" font-weight="bold">Loss-based outage per migration (lost pings x '
             'interval, ms)</text>' % left)
    for t in range(0, top + 1, max(top // 5, 10)):
        y = bottom - t / top * plot_h
        o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, w - 20, y, y))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>' % (left - 6, y + 4, t))
    col = (w - left - 20) / max(len(kinds), 1)
    for i, k in enumerate(kinds):
        cx = left + col * i + col / 2
        v = data[k]
        for j, ms in enumerate(v):
            o.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s" opacity="0.7"><title>%d ms</title></circle>'
                     % (cx - 20 + (j % 9) * 5, bottom - ms / top * plot_h, "#d9822b" if k == "bare" else "#2b7bb9", ms))
        if v:
            med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
            y = bottom - med / top * plot_h
            o.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="2"/>'
                     % (cx - 30, cx + 30, y, y))
            o.append('<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">median <tspan class="value">%g'
                     '</tspan> ms, max %d</text>' % (cx, y - 8, med, v[-1]))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%s (%d)</text>'
                 % (cx, bottom + 18, "bare QEMU" if k == "bare" else "kvnet " + k, len(v)))
    o.append('<text x="%d" y="%d" fill="#555">one dot per migration; the bar is the median</text>' % (left, h - 14))
    o.append("</svg>")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(o) + "\n")


def migration(log, outdir):
    import json
    import os
    recs = []
    with open(log, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    sys.exit("svgchart: %s: a line is not JSON: %.80s" % (log, line))
    if not recs:
        sys.exit("svgchart: no migrations in %s" % log)
    os.makedirs(outdir, exist_ok=True)
    count = {}
    for r in recs:
        k = re.sub(r"[^a-z0-9-]", "_", str(r.get("kind", "vm")))
        count[k] = count.get(k, 0) + 1
        path = os.path.join(outdir, "migration-%s-%02d.svg" % (k, count[k]))
        timeline(r, path)
        print(path)
    path = os.path.join(outdir, "migration-outages.svg")
    outages(recs, path)
    print(path)


def values(svg):
    with open(svg, encoding="utf-8") as f:
        for v in re.findall(r'<(?:text|tspan) class="value"[^>]*>([^<]*)</(?:text|tspan)>', f.read()):
            print(v)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "cni":
        cni(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "migration":
        migration(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "values":
        values(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
