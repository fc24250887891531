#!/usr/bin/env python3
"""Plot the store benchmark's CSV (store/benches/store.rs) as a PNG.

    cargo bench -p tower-dt-store --bench store          # writes target/store-bench.csv
    python3 -m venv target/plotenv && target/plotenv/bin/pip install matplotlib
    target/plotenv/bin/python scripts/plot_store_bench.py target/store-bench.csv docs/store-bench.png

Left: requests/s per server at 16 and 64 connections (each round as a dot, the bar is
the whole run). Right: p50 and p99 latency (log scale), with the 10 ms goal of issues 21
and 22. (The CSV's last column, the bench's own nats-server's CPU per request, is not
plotted.)
"""

import csv
import sys
from collections import defaultdict

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(
        "matplotlib is missing: python3 -m venv target/plotenv && "
        "target/plotenv/bin/pip install matplotlib, then run this with target/plotenv/bin/python"
    )

ORDER = ["layer", "sqlite", "naive-sqlite", "postgres", "naive-postgres", "nats", "naive-nats"]
COLORS = {
    "layer": "#9e9e9e",
    "sqlite": "#1f77b4",
    "naive-sqlite": "#aec7e8",
    "postgres": "#2ca02c",
    "naive-postgres": "#98df8a",
    "nats": "#ff7f0e",
    "naive-nats": "#ffbb78",
}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_store_bench.py BENCH.csv OUT.png")
    source, out = sys.argv[1], sys.argv[2]
    totals = {}
    rounds = defaultdict(list)
    with open(source, newline="") as file:
        for row in csv.DictReader(file):
            key = (int(row["connections"]), row["server"])
            if row["round"] == "all":
                totals[key] = row
            else:
                rounds[key].append(float(row["req_s"]))
    connections = sorted({c for c, _ in totals})
    servers = [s for s in ORDER if any((c, s) in totals for c in connections)]
    servers += sorted({s for _, s in totals} - set(servers))

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(connections))]
        rps = [float(totals.get((c, server), {}).get("req_s", 0)) for c in connections]
        color = COLORS.get(server, None)
        bars = left.bar(xs, rps, width, label=server, color=color, edgecolor="black", lw=0.5)
        for bar, value in zip(bars, rps):
            left.annotate(
                f"{value:,.0f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=90,
                xytext=(0, 6),
                textcoords="offset points",
            )
        for x, c in zip(xs, connections):
            dots = rounds.get((c, server), [])
            left.scatter([x] * len(dots), dots, s=6, color="black", zorder=3)
        p50 = [float(totals.get((c, server), {}).get("p50_us", "nan")) / 1000 for c in connections]
        p99 = [float(totals.get((c, server), {}).get("p99_us", "nan")) / 1000 for c in connections]
        right.bar(xs, p99, width, color=color, edgecolor="black", lw=0.5, label=server)
        right.scatter(xs, p50, marker="_", s=120, color="black", zorder=3)
    for axis in (left, right):
        axis.set_xticks(range(len(connections)))
        axis.set_xticklabels([f"{c} connections" for c in connections])
        axis.grid(axis="y", alpha=0.3)
    left.margins(y=0.15)
    left.set_ylabel("requests/s (bar: whole run, dots: rounds)")
    left.set_title("Throughput, every request a distinct DT event")
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("latency, ms (bar: p99, tick: p50)")
    right.axhline(10, color="red", lw=0.8, ls="--")
    right.annotate("10 ms (p99 goal at 16)", (0.02, 10), xycoords=("axes fraction", "data"),
                   color="red", fontsize=8, va="bottom")
    right.set_title("Latency")

    ratios = []
    for c in connections:
        def rps(server):
            row = totals.get((c, server))
            return float(row["req_s"]) if row else None

        parts = []
        for a, b in [("sqlite", "layer"), ("sqlite", "naive-sqlite"),
                     ("postgres", "layer"), ("postgres", "naive-postgres"),
                     ("nats", "layer"), ("nats", "naive-nats")]:
            if rps(a) and rps(b):
                parts.append(f"{a}/{b} {rps(a) / rps(b):.2f}")
        if parts:
            ratios.append(f"{c} conns: " + ", ".join(parts))
    fig.suptitle("tower-dt-store, req/s ratios: " + "\n".join(ratios), fontsize=8.5)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
