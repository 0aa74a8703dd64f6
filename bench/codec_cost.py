"""What decoding a large body costs the event loop, shape by shape.

Usage: .venv/bin/python bench/codec_cost.py

For each ~1 MiB body shape it prints the time ``codec.loads`` takes in a thread (as the
dispatcher runs it for bodies over 16 KiB) and the worst lag a task sampling the event loop
meanwhile sees: the loop-stall figure the strict codec is designed to keep at a few
milliseconds. The lag includes the machine's own noise: the first line measures it idle.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable

from service_template.protocol import ParseError, codec

MIB = 1 << 20


def _fill(unit: bytes, room: int = MIB - 200) -> bytes:
    return b"[" + b",".join([unit] * (room // (len(unit) + 1))) + b"]"


def _call(params: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","method":"nope","params":' + params + b',"id":1}'


SHAPES: dict[str, bytes] = {
    "one big string": _call(b'["' + b"x" * (MIB - 100) + b'"]'),
    "escaped string, spaced": json.dumps({"params": ["\u00e9\n" * (MIB // 8)]}).encode(),
    "numbers": _call(_fill(b"1")),
    "numbers, spaced": _call(_fill(b"1", MIB // 2).replace(b",", b", ")),
    "floats": _call(_fill(b"1.5")),
    "short strings": _call(_fill(b'"ab"')),
    "15k objects (fast path)": _call(_fill(b'{"name":"' + b"n" * 50 + b'","v":1}')),
    "40k objects (Python scanner)": _call(
        b"[" + b",".join([b'{"k":"0123456789ab"}'] * 40_000) + b"]"
    ),
    "deep-ish arrays (refused)": _call(_fill(b"[" * 100 + b"1" + b"]" * 100)),
    "many empty arrays (refused)": _call(_fill(b"[]")),
    "duplicate key at the end": _call(_fill(b"1"))[:-1] + b',"id":2}',
    "invalid at the end": _call(_fill(b"1"))[:-2] + b",}",
    "huge integer at the end": _call(_fill(b"1", MIB - 5000)[:-1] + b"," + b"7" * 4000 + b"]"),
    "batch of 100": b"[" + b",".join([_call(_fill(b"2", MIB // 100 - 100))] * 100) + b"]",
}


def _decode(body: bytes) -> str:
    try:
        codec.loads(body)
    except ParseError as exc:
        return f"refused: {exc.data['reason'][:40]}"
    return "ok"


async def _measure(work: Callable[[], str] | None, pool: concurrent.futures.Executor) -> tuple:
    loop = asyncio.get_running_loop()
    worst, stop = 0.0, False

    async def sample() -> None:
        nonlocal worst
        while not stop:
            started = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - started - 0.001)

    sampler = asyncio.ensure_future(sample())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    outcome = "idle"
    if work is None:
        await asyncio.sleep(0.5)
    else:
        outcome = await loop.run_in_executor(pool, work)
    seconds = time.perf_counter() - started
    stop = True
    await sampler
    return seconds, worst, outcome


async def main() -> None:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    print(f"{'shape':32} {'size':>8} {'decode':>9} {'loop lag':>9}  outcome")
    seconds, lag, _ = await _measure(None, pool)
    print(f"{'(idle, 0.5 s)':32} {'':8} {'':9} {lag * 1000:7.1f}ms")
    for name, body in SHAPES.items():
        seconds, lag, outcome = await _measure(lambda body=body: _decode(body), pool)
        print(
            f"{name:32} {len(body) / MIB:6.2f}Mi {seconds * 1000:7.1f}ms "
            f"{lag * 1000:7.1f}ms  {outcome}"
        )


if __name__ == "__main__":
    asyncio.run(main())
