"""Turn the per-run records into medians, round-by-round ratios, one table and the targets."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from peers import AIOHTTP_RPC, BASELINE, OURS

# Issue 3's targets for ours against aiohttp-rpc, in the same run, per server core.
THROUGHPUT_TARGETS = {"single": 1.0, "batch": 2.5, "notification": 1.0}
RSS_TARGET_MIB = 35.0


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _round_ratios(
    ok: dict[tuple[int, str, str], dict[str, Any]],
    peer: str,
    workload: str,
    reference: str,
    key: str,
) -> list[float]:
    """One ratio per round in which both the peer and the reference ran cleanly."""
    ratios = []
    for (round_no, run_workload, run_peer), run in ok.items():
        if run_peer != peer or run_workload != workload:
            continue
        ref = ok.get((round_no, workload, reference))
        if ref is not None and _value(ref, key) > 0:
            ratios.append(_value(run, key) / _value(ref, key))
    return ratios


def _value(run: dict[str, Any], key: str) -> float:
    return float(run["latency_ms"]["p99"] if key == "p99" else run[key])


def summarise(
    runs: list[dict[str, Any]], peers: list[str], workloads: list[str], calls: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per peer and workload: medians across clean rounds and median ratios."""
    ok = {(r["round"], r["workload"], r["peer"]): r for r in runs if r["ok"]}
    rows = []
    for workload in workloads:
        for peer in peers:
            mine = [r for r in runs if r["peer"] == peer and r["workload"] == workload]
            clean = [r for r in mine if r["ok"]]
            vs_aio = _round_ratios(ok, peer, workload, AIOHTTP_RPC, "calls_per_s")
            vs_base = _round_ratios(ok, peer, workload, BASELINE, "calls_per_s")
            p99_vs_aio = _round_ratios(ok, peer, workload, AIOHTTP_RPC, "p99")
            rows.append(
                {
                    "peer": peer,
                    "workload": workload,
                    "calls_per_request": calls[workload],
                    "rounds": len(mine),
                    "rounds_ok": len(clean),
                    "requests_per_s": _median([r["requests_per_s"] for r in clean]),
                    "calls_per_s": _median([r["calls_per_s"] for r in clean]),
                    "p50_ms": _median([r["latency_ms"]["p50"] for r in clean]),
                    "p99_ms": _median([r["latency_ms"]["p99"] for r in clean]),
                    "rss_mib": _median([r["rss_mib"] for r in clean]),
                    "rss_mib_max": max((r["rss_mib"] for r in clean), default=None),
                    "errors": sum(r.get("error_count", 0) for r in mine),
                    "failed_rounds": len(mine) - len(clean),
                    "ratio_vs_aiohttp_rpc": _median(vs_aio),
                    "ratio_vs_baseline": _median(vs_base),
                    "p99_ratio_vs_aiohttp_rpc": _median(p99_vs_aio),
                    "ratios_per_round": {
                        "vs_aiohttp_rpc": vs_aio,
                        "vs_baseline": vs_base,
                        "p99_vs_aiohttp_rpc": p99_vs_aio,
                    },
                }
            )
    return rows


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The one table: medians across rounds; ratios are medians of per-round ratios."""
    header = (
        "peer",
        "workload",
        "req/s",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "errors",
        "x aiohttp-rpc",
        "x baseline",
        "p99/aiohttp-rpc",
    )
    lines = [tuple(header)]
    for row in rows:
        errors = str(row["errors"]) + (
            f" ({row['failed_rounds']} failed)" if row["failed_rounds"] else ""
        )
        lines.append(
            (
                row["peer"],
                row["workload"],
                _fmt(row["requests_per_s"], ",.0f"),
                _fmt(row["calls_per_s"], ",.0f"),
                _fmt(row["p50_ms"], ".2f"),
                _fmt(row["p99_ms"], ".2f"),
                _fmt(row["rss_mib"], ".1f"),
                errors,
                _fmt(row["ratio_vs_aiohttp_rpc"], ".2f", "x"),
                _fmt(row["ratio_vs_baseline"], ".2f", "x"),
                _fmt(row["p99_ratio_vs_aiohttp_rpc"], ".2f", "x"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    left = {0, 1}
    text = []
    for number, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        text.append("  ".join(cells).rstrip())
        if number == 0:
            text.append("  ".join("-" * width for width in widths))
    title = (
        f"{args.rounds} round(s) x {args.duration} s, {args.connections} connections, "
        f"server on CPU 0, wrk on CPU 1; medians across rounds; ratios = median of "
        f"per-round calls/s ratios"
    )
    return title + "\n" + "\n".join(text)


def format_targets(rows: list[dict[str, Any]]) -> str:
    """Issue 3's targets for ours, met or not (information only: they do not fail the run)."""
    by_key = {(row["peer"], row["workload"]): row for row in rows}
    if not any(peer == OURS for peer, _ in by_key):
        return ""
    lines = ["targets for ours (issue 3, vs aiohttp-rpc in the same run):"]
    for workload, target in THROUGHPUT_TARGETS.items():
        row = by_key.get((OURS, workload))
        if row is None:
            continue
        ratio = row["ratio_vs_aiohttp_rpc"]
        lines.append(
            _verdict(
                f"{workload} calls/s >= {target:.1f}x",
                ratio,
                ratio is not None and ratio >= target,
                ".2f",
                "x",
            )
        )
        p99 = row["p99_ratio_vs_aiohttp_rpc"]
        lines.append(
            _verdict(f"{workload} p99 <= 1.0x", p99, p99 is not None and p99 <= 1.0, ".2f", "x")
        )
    rss = [row["rss_mib_max"] for row in rows if row["peer"] == OURS and row["rss_mib_max"]]
    worst = max(rss) if rss else None
    lines.append(
        _verdict(
            f"RSS after run <= {RSS_TARGET_MIB:.0f} MiB (worst run)",
            worst,
            worst is not None and worst <= RSS_TARGET_MIB,
            ".1f",
            " MiB",
        )
    )
    return "\n".join(lines)


def _verdict(label: str, value: float | None, met: bool, spec: str, suffix: str) -> str:
    verdict = "n/a (no clean paired run)" if value is None else ("met" if met else "NOT MET")
    return f"  {label:<44} {_fmt(value, spec, suffix):>10}  {verdict}"
