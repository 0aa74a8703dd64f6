"""Turn the per-run records into medians, round-by-round ratios, one table and the targets."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from peers import AIOHTTP_RPC, BASELINE, FLOOR, NGINX, OURS, OURS_PLAIN, OURS_TYPED, OURS_UNTYPED

# Issue 14's targets, in the same run, per server core: ours (async def) against aiohttp-rpc
# (twohop: our gateway and client against aiohttp-rpc's), ours-plain (the same method as a plain
# def) against ours, and ours-typed (validated params) against ours-untyped.
THROUGHPUT_TARGETS = {"single": 3.5, "batch": 4.0, "notification": 3.5, "twohop": 2.0}
PLAIN_TARGET = 0.8
TYPED_TARGET = 0.85


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
    return float(run["latency_ms"]["p99"] if key == "p99" else run.get(key) or 0.0)


def _medians(clean: list[dict[str, Any]], key: str) -> float | None:
    return _median([r[key] for r in clean if r.get(key) is not None])


def summarise(
    runs: list[dict[str, Any]],
    peers: list[str],
    workloads: list[str],
    calls: dict[str, int],
    references: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per peer and workload that ran: medians across clean rounds and median ratios.

    ``references`` names, per peer, the peer of the "x ref" ratio (the same method written
    otherwise: ours-plain against ours, ours-typed against ours-untyped)."""
    references = references or {}
    ok = {(r["round"], r["workload"], r["peer"]): r for r in runs if r["ok"]}
    rows = []
    for workload in workloads:
        for peer in peers:
            mine = [r for r in runs if r["peer"] == peer and r["workload"] == workload]
            if not mine:  # a peer without a two-hop stack does not run that workload
                continue
            clean = [r for r in mine if r["ok"]]
            vs_aio = _round_ratios(ok, peer, workload, AIOHTTP_RPC, "calls_per_s")
            vs_base = _round_ratios(ok, peer, workload, BASELINE, "calls_per_s")
            p99_vs_aio = _round_ratios(ok, peer, workload, AIOHTTP_RPC, "p99")
            reference = references.get(peer)
            vs_ref, cpu_vs_ref = (
                (
                    _round_ratios(ok, peer, workload, reference, "calls_per_s"),
                    _round_ratios(ok, peer, workload, reference, "cpu_us_per_call"),
                )
                if reference
                else ([], [])
            )
            of_ceiling = _round_ratios(ok, peer, workload, NGINX, "requests_per_s")
            client_vs_aio = _round_ratios(ok, peer, workload, AIOHTTP_RPC, "client_cpu_us_per_call")
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
                    "cpu_us_per_call": _medians(clean, "cpu_us_per_call"),
                    "backend_cpu_us_per_call": _medians(clean, "backend_cpu_us_per_call"),
                    "client_cpu_us_per_call": _medians(clean, "client_cpu_us_per_call"),
                    "rss_mib": _median([r["rss_mib"] for r in clean]),
                    "rss_mib_max": max((r["rss_mib"] for r in clean), default=None),
                    "errors": sum(r.get("error_count", 0) for r in mine),
                    "failed_rounds": len(mine) - len(clean),
                    "ratio_vs_aiohttp_rpc": _median(vs_aio),
                    "ratio_vs_baseline": _median(vs_base),
                    "p99_ratio_vs_aiohttp_rpc": _median(p99_vs_aio),
                    "reference": reference,
                    "ratio_vs_reference": _median(vs_ref),
                    "cpu_ratio_vs_reference": _median(cpu_vs_ref),
                    "fraction_of_ceiling": _median(of_ceiling),
                    "client_cpu_ratio_vs_aiohttp_rpc": _median(client_vs_aio),
                    "ratios_per_round": {
                        "vs_aiohttp_rpc": vs_aio,
                        "vs_baseline": vs_base,
                        "p99_vs_aiohttp_rpc": p99_vs_aio,
                        "vs_reference": vs_ref,
                        "cpu_vs_reference": cpu_vs_ref,
                        "requests_vs_nginx": of_ceiling,
                        "client_cpu_vs_aiohttp_rpc": client_vs_aio,
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
        "CPU us/call",
        "RSS MiB",
        "errors",
        "x aiohttp-rpc",
        "x baseline",
        "x ref",
        "p99/aiohttp-rpc",
        "of nginx",
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
                _fmt(row["cpu_us_per_call"], ".1f"),
                _fmt(row["rss_mib"], ".1f"),
                errors,
                _fmt(row["ratio_vs_aiohttp_rpc"], ".2f", "x"),
                _fmt(row["ratio_vs_baseline"], ".2f", "x"),
                _fmt(row["ratio_vs_reference"], ".2f", "x"),
                _fmt(row["p99_ratio_vs_aiohttp_rpc"], ".2f", "x"),
                _fmt(row["fraction_of_ceiling"], ".0%"),
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
        f"{args.workers} worker(s), server on CPU {args.server_cpus}, wrk on CPU "
        f"{args.load_cpus}, two-hop backend on CPU {args.backend_cpus}; medians across rounds; "
        f"ratios = median of per-round calls/s ratios (p99: of p99s; of nginx: of requests/s)"
    )
    if getattr(args, "overlap", False):
        title += "\nWARNING: server and wrk CPUs overlap: these figures only show the run works"
    refs = sorted({(row["peer"], row["reference"]) for row in rows if row.get("reference")})
    legend = "x ref: " + "; ".join(f"{peer} over {ref}" for peer, ref in refs) if refs else ""
    return title + "\n" + "\n".join(text) + ("\n" + legend if legend else "")


def format_hops(rows: list[dict[str, Any]]) -> str:
    """The two-hop rows again, with the CPU of each hop: the gateway (the server under load),
    its backend, and the difference, roughly what the gateway's client costs per call."""
    hop_rows = [row for row in rows if row.get("backend_cpu_us_per_call") is not None]
    if not hop_rows:
        return ""
    header = (
        "peer",
        "workload",
        "gateway calls/s",
        "p99 ms",
        "gateway CPU us/call",
        "backend CPU us/call",
        "client ~ us/call",
        "x aiohttp-rpc",
        "client CPU x aiohttp-rpc",
    )
    lines = [header] + [
        (
            row["peer"],
            row["workload"],
            _fmt(row["calls_per_s"], ",.0f"),
            _fmt(row["p99_ms"], ".2f"),
            _fmt(row["cpu_us_per_call"], ".1f"),
            _fmt(row["backend_cpu_us_per_call"], ".1f"),
            _fmt(row["client_cpu_us_per_call"], ".1f"),
            _fmt(row["ratio_vs_aiohttp_rpc"], ".2f", "x"),
            _fmt(row["client_cpu_ratio_vs_aiohttp_rpc"], ".2f", "x"),
        )
        for row in hop_rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line))
        for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    title = (
        "service to service (gateway -> backend, each the peer's own server and client); "
        "client ~ = gateway CPU - backend CPU per call"
    )
    return title + "\n" + "\n".join(text)


def format_targets(rows: list[dict[str, Any]]) -> str:
    """Issue 14's targets, met or not (information only: they do not fail the run)."""
    by_key = {(row["peer"], row["workload"]): row for row in rows}
    if not any(peer in (OURS, OURS_PLAIN, OURS_TYPED) for peer, _ in by_key):
        return ""
    lines = ["targets (issue 14, same run):"]
    for workload, target in THROUGHPUT_TARGETS.items():
        row = by_key.get((OURS, workload))
        if row is not None:
            ratio = row["ratio_vs_aiohttp_rpc"]
            lines.append(
                _verdict(
                    f"ours {workload} calls/s >= {target:.1f}x aiohttp-rpc",
                    ratio,
                    ratio is not None and ratio >= target,
                    ".2f",
                    "x",
                )
            )
        floor = by_key.get((FLOOR, workload))
        if row is not None and floor is not None:
            # What asyncio and httptools alone reach: a target above it is out of this
            # architecture's reach whatever the runtime does; ours' share of it is the rest.
            lines.append(
                f"  {f'asyncio-floor {workload} calls/s x aiohttp-rpc; ours at':<56} "
                f"{_fmt(floor['ratio_vs_aiohttp_rpc'], '.2f', 'x'):>8}  "
                f"{_fmt(_share(row, floor), '.0%')}"
            )
        plain = by_key.get((OURS_PLAIN, workload))
        if plain is not None:
            ratio = plain["ratio_vs_reference"]
            lines.append(
                _verdict(
                    f"ours-plain {workload} calls/s >= {PLAIN_TARGET:.1f}x ours",
                    ratio,
                    ratio is not None and ratio >= PLAIN_TARGET,
                    ".2f",
                    "x",
                )
            )
        typed = by_key.get((OURS_TYPED, workload))
        if typed is not None and typed["reference"] == OURS_UNTYPED:
            ratio = typed["ratio_vs_reference"]
            lines.append(
                _verdict(
                    f"ours-typed {workload} calls/s >= {TYPED_TARGET:.2f}x ours-untyped",
                    ratio,
                    ratio is not None and ratio >= TYPED_TARGET,
                    ".2f",
                    "x",
                )
            )
            # The same 15 % read from server CPU per call, which a busy machine moves less.
            cpu = typed["cpu_ratio_vs_reference"]
            lines.append(
                _verdict(
                    f"ours-typed {workload} CPU/call <= {2 - TYPED_TARGET:.2f}x ours-untyped",
                    cpu,
                    cpu is not None and cpu <= 2 - TYPED_TARGET,
                    ".2f",
                    "x",
                )
            )
        client = by_key.get((OURS, workload))
        if client is not None and client["client_cpu_us_per_call"] is not None:
            ratio = client["client_cpu_ratio_vs_aiohttp_rpc"]
            lines.append(
                _verdict(
                    f"ours {workload} client CPU/call <= aiohttp-rpc's",
                    ratio,
                    ratio is not None and ratio <= 1.0,
                    ".2f",
                    "x",
                )
            )
        for peer in (OURS, OURS_PLAIN, OURS_TYPED):
            mine = by_key.get((peer, workload))
            if mine is None:
                continue
            p99 = mine["p99_ratio_vs_aiohttp_rpc"]
            lines.append(
                _verdict(
                    f"{peer} {workload} p99 <= aiohttp-rpc's",
                    p99,
                    p99 is not None and p99 <= 1.0,
                    ".2f",
                    "x",
                )
            )
    for peer in (OURS, OURS_PLAIN, OURS_TYPED):
        worst = _worst_rss(rows, peer)
        reference = _worst_rss(rows, AIOHTTP_RPC)
        if worst is None:
            continue
        ratio = None if reference is None else worst / reference
        lines.append(
            _verdict(
                f"{peer} RSS after run <= aiohttp-rpc's (worst run)",
                ratio,
                ratio is not None and ratio <= 1.0,
                ".2f",
                "x",
            )
        )
    return "\n".join(lines)


def _share(row: dict[str, Any], floor: dict[str, Any]) -> float | None:
    """Ours' calls/s as a share of the floor's, from the two ratios to aiohttp-rpc (medians)."""
    ours, least = row["ratio_vs_aiohttp_rpc"], floor["ratio_vs_aiohttp_rpc"]
    return None if ours is None or not least else ours / least


def _worst_rss(rows: list[dict[str, Any]], peer: str) -> float | None:
    values = [row["rss_mib_max"] for row in rows if row["peer"] == peer and row["rss_mib_max"]]
    return max(values) if values else None


def _verdict(label: str, value: float | None, met: bool, spec: str, suffix: str) -> str:
    verdict = "n/a (no clean paired run)" if value is None else ("met" if met else "NOT MET")
    return f"  {label:<56} {_fmt(value, spec, suffix):>8}  {verdict}"
