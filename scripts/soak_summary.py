#!/usr/bin/env python3
"""Summarises soak curves written by scripts/soak.sh: after warm-up, does memory grow?

    scripts/soak_summary.py A.csv [B.csv ...] [--svg docs/soak.svg]

For each CSV (seconds, rss_kib, fds), warm-up is the first 20% of the samples. Prints the
resident memory at the end of warm-up, the mean of the first and the last quarter after it,
the least-squares slope after warm-up (MiB per minute) and the range of open descriptors.
With --svg, draws every curve (resident MiB against minutes) into one SVG, no dependencies.
"""
import csv
import sys


def load(path):
    with open(path) as f:
        rows = [r for r in csv.DictReader(f)]
    return [(float(r["seconds"]), int(r["rss_kib"]) / 1024, int(r["fds"])) for r in rows]


def summary(path, rows):
    n = len(rows)
    if n < 10:
        return f"{path}: only {n} samples"
    after = rows[n // 5:]
    q = max(1, len(after) // 4)
    first = sum(r[1] for r in after[:q]) / q
    last = sum(r[1] for r in after[-q:]) / q
    ts = [r[0] for r in after]
    ys = [r[1] for r in after]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var * 60 if var > 0 else 0.0
    fds = [r[2] for r in after]
    return (f"{path}: {n} samples over {rows[-1][0]:.0f} s; RSS after warm-up {after[0][1]:.1f} MiB, "
            f"first quarter mean {first:.1f}, last quarter mean {last:.1f} MiB ({last - first:+.1f}), "
            f"slope {slope:+.3f} MiB/min, peak {max(r[1] for r in rows):.1f} MiB; "
            f"fds {min(fds)}-{max(fds)} after warm-up (start {rows[0][2]})")


def svg(curves, out):
    w, h, pad = 640, 320, 50
    tmax = max(r[0] for _, rows in curves for r in rows) / 60
    ymax = max(r[1] for _, rows in curves for r in rows) * 1.1
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">minutes</text>',
             f'<text x="12" y="{h / 2}" transform="rotate(-90 12 {h / 2})" text-anchor="middle">resident MiB</text>']
    for i in range(5):
        y = ymax * i / 4
        py = h - pad - (h - pad - 10) * i / 4
        parts.append(f'<text x="{pad - 4}" y="{py + 4}" text-anchor="end">{y:.0f}</text>')
        t = tmax * i / 4
        px = pad + (w - pad - 10) * i / 4
        parts.append(f'<text x="{px}" y="{h - pad + 14}" text-anchor="middle">{t:.1f}</text>')
    for k, (name, rows) in enumerate(curves):
        c = colors[k % len(colors)]
        pts = " ".join(f"{pad + (w - pad - 10) * r[0] / 60 / tmax:.1f},{h - pad - (h - pad - 10) * r[1] / ymax:.1f}" for r in rows)
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{pad + 10}" y="{22 + 14 * k}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv):
    out = None
    if "--svg" in argv:
        i = argv.index("--svg")
        out = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    curves = []
    for path in argv:
        rows = load(path)
        print(summary(path, rows))
        curves.append((path.rsplit("/", 1)[-1].removesuffix(".csv"), rows))
    if out:
        svg(curves, out)


if __name__ == "__main__":
    main(sys.argv[1:])
