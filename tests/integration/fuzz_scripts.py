"""Hypothesis strategies for the end of a fuzzed stream, and for whole streams.

A stream ends, or not, with one ``Tail``: a request that no server can answer normally
(``broken``: malformed, oversized, an unsupported version, no Host) or a valid one cut short
(``cut_short``). ``scripts`` draws the answered requests (fuzz_streams.py), the tail and the
points where the bytes are split into writes.
"""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from tests.integration.fuzz_streams import (
    MAX_BODY,
    OVERSIZED_HEADER,
    Script,
    Tail,
    answered,
    livez,
    request_head,
)

BROKEN_KINDS = (
    "garbage",
    "no-colon",
    "bad-length",
    "bad-chunk-size",
    "version",
    "no-host",
    "two-hosts",
    "header-too-large",
    "trailer-too-large",
    "body-too-large",
    "chunked-too-large",
)


# How a stream ends: a broken request of one of these kinds, a request cut short, or nothing.
ENDINGS = (*BROKEN_KINDS, "cut", "none")


@st.composite
def broken(draw: st.DrawFn, kind: str) -> Tail:
    """A request of ``kind`` (one of BROKEN_KINDS) that no server can answer normally, and
    the statuses its answer may have."""
    call = b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}'
    # The header block left open, for a broken line or field to follow.
    head = request_head("POST", "/api", [("Content-Type", "application/json")])[:-2]
    bad_request = frozenset({400})
    if kind == "garbage":
        junk = draw(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b))
        return Tail(b"\x01" + junk + b"\r\n\r\n", bad_request, label=kind)
    if kind == "no-colon":
        return Tail(head + b"NoColonHere\r\n\r\n", bad_request, label=kind)
    if kind == "bad-length":
        length = draw(st.sampled_from([b"12abc", b"-1", b"0x10", b"1 2"]))
        return Tail(
            head + b"Content-Length: " + length + b"\r\n\r\n" + call, bad_request, label=kind
        )
    if kind == "bad-chunk-size":
        size = draw(st.sampled_from([b"zz", b"-5", b"ffffffffffffffffffff", b""]))
        return Tail(
            head + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nxx\r\n0\r\n\r\n",
            bad_request,
            label=kind,
        )
    if kind == "version":
        version = draw(st.sampled_from(["HTTP/2.0", "HTTP/1.2", "HTTP/3.0"]))
        data = request_head("GET", "/livez", [], version)
        # 505 is the one 5xx a client earns: RFC 9110 15.6.6.
        return Tail(data, frozenset({400, 505}), label=kind)
    if kind == "no-host":
        # RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. The framing is intact, so
        # the server may keep the connection.
        data = request_head("GET", "/livez", [], host=False)
        return Tail(data, bad_request, must_close=False, label=kind)
    if kind == "two-hosts":
        data = request_head("GET", "/livez", [("Host", "elsewhere.example")])
        return Tail(data, bad_request, must_close=False, label=kind)
    pad = b"X-Pad: " + b"a" * OVERSIZED_HEADER + b"\r\n"
    if kind == "header-too-large":
        return Tail(head + pad + b"\r\n", frozenset({431}), reset_ok=True, label=kind)
    if kind == "trailer-too-large":
        # The trailer section counts against the header limit like the head does.
        body = b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n" % (len(call), call)
        return Tail(head + body + pad + b"\r\n", frozenset({431}), reset_ok=True, label=kind)
    if kind == "body-too-large":
        # Announced over the limit, some of it sent: the 413 must reach the client, which
        # needs a graceful close (stop reading, answer, half-close, drain).
        sent = draw(st.integers(0, 3 * MAX_BODY))
        data = head + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1 + sent) + b" " * sent
        return Tail(data, frozenset({413}), label=kind)
    chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(MAX_BODY // 1024 + 1))
    return Tail(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks, frozenset({413}), label=kind)


@st.composite
def cut_short(draw: st.DrawFn) -> Tail:
    """A valid request missing its end: nothing is owed for it."""
    step = draw(answered)
    keep = draw(st.integers(1, len(step.data) - 1))
    return Tail(step.data[:keep], label=f"cut {step.label}")


@st.composite
def scripts(draw: st.DrawFn, ending: str) -> Script:
    """A stream of answered requests ending as ``ending`` says (one of ENDINGS), split into
    writes. The ending is the caller's choice, not drawn: each kind then gets its share of a
    short budget (``sampled_from`` would favour the first ones, where its shrinker heads)."""
    steps = draw(st.lists(answered, max_size=6))
    tail = None if ending == "none" else draw(cut_short() if ending == "cut" else broken(ending))
    data = b"".join(step.data for step in steps) + (tail.data if tail else b"")
    if not data:
        steps = [draw(livez())]
        data = steps[0].data
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data)), max_size=10))))
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)]) if data[a:b]]
    pauses = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
    return Script(steps, tail, pieces, pauses)
