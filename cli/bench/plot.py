"""Plot end-to-end benchmark reports side by side (e.g. 1 vs 2 stream workers) into one PNG.

Example::

    python -m cli.bench.plot docs/bench-e2e.png bench-results/bench-e2e-A.json bench-results/bench-e2e-B.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TARGET_TX_S = 2_000
TARGET_P99_S = 2.0


def _median(figure: Any) -> float:
    if isinstance(figure, dict):
        return float(figure["median"])
    return float("nan") if figure is None else float(figure)


def load_runs(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(label, first e2e run) per report, labelled by its stream worker count."""
    runs = []
    for path in paths:
        e2e = json.loads(path.read_text())["results"]["e2e"]
        run = e2e["runs"][0] if len(e2e["runs"]) == 1 else e2e["summary"]
        runs.append((f"{int(_median(run['silver_workers']))} stream worker(s)", run))
    return runs


def plot_e2e(runs: list[tuple[str, dict[str, Any]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, rate_ax, rss_ax) = plt.subplots(1, 3, figsize=(17, 5))
    width = 0.8 / max(len(runs), 1)
    rate_names = ["accepted by API", "into silver", "raw: Kafka produce", "raw: COPY (tx + lines)"]
    for i, (label, run) in enumerate(runs):
        lat = run["silver"]["post_to_silver_s"]
        bars = lat_ax.bar([n + i * width for n in range(3)], [_median(lat[p]) for p in ("p50", "p95", "p99")],
                          width, label=label)
        lat_ax.bar_label(bars, fmt="%.2f", fontsize=8)
        rates = [_median(run["accepted_tx_s"]), _median(run["silver"]["tx_s"]),
                 _median(run["raw"]["kafka_produce_msg_s"]), _median(run["raw"]["copy_silver_tx_with_lines_s"])]
        bars = rate_ax.bar([n + i * width for n in range(len(rates))], rates, width, label=label)
        rate_ax.bar_label(bars, fmt="%.0f", fontsize=8)
        for name, rss in run["rss"].items():
            points = rss["samples"]
            rss_ax.plot([t for t, _ in points], [m for _, m in points], label=f"{name}, {label}")
    centre = width * (len(runs) - 1) / 2
    lat_ax.set_xticks([n + centre for n in range(3)], ["p50", "p95", "p99"])
    lat_ax.axhline(TARGET_P99_S, color="grey", linestyle="--", label=f"target p99 {TARGET_P99_S:g} s")
    lat_ax.set_ylabel("seconds")
    lat_ax.set_title("POST -> silver commit latency")
    lat_ax.legend(fontsize=8)
    rate_ax.set_xticks([n + centre for n in range(len(rate_names))], rate_names, fontsize=8)
    rate_ax.axhline(TARGET_TX_S, color="grey", linestyle="--", label=f"target {TARGET_TX_S:,} tx/s (also offered)")
    rate_ax.set_yscale("log")
    rate_ax.set_ylabel("transactions/s (log)")
    rate_ax.set_title("Sustained rate and the raw limits of the same run")
    rate_ax.legend(fontsize=8)
    rss_ax.set_xlabel("seconds since the load started")
    rss_ax.set_ylabel("RSS, MiB")
    rss_ax.set_title("RSS per process over the run")
    rss_ax.legend(fontsize=7)
    fig.suptitle("scout bench e2e: every process running, single POSTs from the simulator's client")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m cli.bench.plot OUT.png REPORT.json [REPORT.json ...]\n")
        return 2
    plot_e2e(load_runs([Path(p) for p in argv[1:]]), Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
