"""Hypothesis strategies for the connection fuzzer: byte streams one client could send.

A stream (``Script``, drawn by fuzz_scripts.py) is a run of complete requests that the server
must answer, each paired with what its answer must be (``Step``), then at most one ``Tail``: a
request that is broken (its answer must be a client error, then the connection may end) or cut
short (nothing after the earlier answers is owed). The bytes are split at arbitrary points into
separate writes. Every request carries its own ``X-Request-Id``, which the server echoes, so
each answer can be matched to its request and the order checked.

The requests are the ones the ProbeService (tests/integration/services.py) answers: ``echo``
returns its argument and ``secret`` needs the token in a header. Limits the server runs with
are set in test_connection_fuzz.py; ``MAX_BODY`` here must match them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.conftest import TOKEN
from tests.integration.response_stream import Response

MAX_BODY = 8192  # SERVICE_MAX_BODY_BYTES of the fuzzed server
OVERSIZED_HEADER = 80 * 1024  # above any sensible header limit (64 KiB today)
ACCESS_DENIED = -32001
_ids = itertools.count(1)

Check = Callable[[Response], None]


def _short(data: bytes) -> str:
    return repr(data) if len(data) <= 300 else f"{data[:240]!r}...({len(data)} bytes)"


class _ShortRepr:
    """Failing examples print through ``__repr__``: hypothesis's printer would otherwise list
    every field of a dataclass, 80 KiB header pads included."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass(repr=False)
class Step(_ShortRepr):
    """One complete request and what its final answer must be."""

    data: bytes
    request_id: str
    statuses: frozenset[int]
    check: Check | None = None
    allow_continue: bool = False  # sent Expect: 100-continue over HTTP/1.1
    may_close: bool = False  # a refusal: the server may close the connection after it
    must_close: bool = False  # HTTP/1.0 without keep-alive
    label: str = ""

    def __repr__(self) -> str:
        return f"Step({self.label}, {_short(self.data)})"


@dataclass(repr=False)
class Tail(_ShortRepr):
    """The stream's last request: broken (``statuses`` set) or cut short (``statuses`` empty)."""

    data: bytes
    statuses: frozenset[int] = frozenset()
    reset_ok: bool = False  # the server refuses before reading it all: a reset may eat the answer
    must_close: bool = True
    label: str = ""

    def __repr__(self) -> str:
        return f"Tail({self.label}, {_short(self.data)})"


@dataclass(repr=False)
class Script(_ShortRepr):
    steps: list[Step]
    tail: Tail | None
    pieces: list[bytes] = field(default_factory=list)  # the stream, as the writes that send it
    pauses: list[bool] = field(default_factory=list)  # pause briefly after that write

    def describe(self) -> str:
        labels = [step.label for step in self.steps]
        if self.tail is not None:
            labels.append(self.tail.label)
        return f"{labels} in {len(self.pieces)} writes"

    def __repr__(self) -> str:
        sizes = [len(piece) for piece in self.pieces]
        return f"Script({self.steps!r}, tail={self.tail!r}, writes={sizes}, pauses={self.pauses})"


# -- building blocks ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _request_id() -> str:
    # Fixed width: an id's length must not change what hypothesis draws (chunk cut points).
    return f"fuzz-{next(_ids) % 10**8:08d}"


def request_head(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    version: str = "HTTP/1.1",
    host: bool = True,
) -> bytes:
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@st.composite
def _chunked(draw: st.DrawFn, body: bytes, trailers: list[tuple[str, str]]) -> bytes:
    """``body`` as a chunked body: arbitrary chunk sizes, extensions, trailer fields."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(len(body) - 1, 1)), max_size=4))))
    out = b""
    for start, end in itertools.pairwise([0, *cuts, len(body)]):
        piece = body[start:end]
        if not piece:
            continue
        size = b"%x" % len(piece)
        if draw(st.booleans()):
            size = size.upper()
        extension = b";fuzz=1" if draw(st.integers(0, 3)) == 0 else b""
        out += size + extension + b"\r\n" + piece + b"\r\n"
    fields = "".join(f"{name}: {value}\r\n" for name, value in trailers)
    return out + b"0\r\n" + fields.encode("latin-1") + b"\r\n"


@st.composite
def _post(
    draw: st.DrawFn,
    body: bytes,
    headers: list[tuple[str, str]],
    trailers: list[tuple[str, str]] | None = None,
    target: str = "/api",
) -> bytes:
    """A POST of ``body``, by Content-Length or chunked (always chunked if trailers are given)."""
    if trailers is None and draw(st.booleans()):
        return request_head("POST", target, [*headers, ("Content-Length", str(len(body)))]) + body
    chunked = draw(_chunked(body, trailers or []))
    return request_head("POST", target, [*headers, ("Transfer-Encoding", "chunked")]) + chunked


def _api_headers(request_id: str, content_type: str = "application/json") -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("X-Request-Id", request_id)]


def _encode(doc: Any, ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode()


def _expect_json(expected: Any) -> Check:
    def check(response: Response) -> None:
        assert response.json() == expected, (response.body, expected)

    return check


def _expect_error(code: int, call_id: Any) -> Check:
    def check(response: Response) -> None:
        doc = response.json()
        assert "result" not in doc, doc
        assert doc["error"]["code"] == code, doc
        assert doc["id"] == call_id, doc

    return check


# -- requests that must be answered ---------------------------------------------------------------


@st.composite
def echo_call(draw: st.DrawFn) -> Step:
    """A call of ``echo``; sometimes with Expect: 100-continue, or an absolute-form target."""
    rid, value = _request_id(), draw(json_values)
    call_id: Any = draw(st.sampled_from([rid, len(rid), None]))
    doc = {"jsonrpc": "2.0", "method": "echo", "params": [value], "id": call_id}
    headers = _api_headers(rid)
    expect = draw(st.integers(0, 4)) == 0
    if expect:
        headers.append(("Expect", "100-continue"))
    # RFC 9112 3.2.2: a server accepts the absolute form of a target.
    target = draw(st.sampled_from(["/api", "/api", "/api", "http://127.0.0.1/api"]))
    data = draw(_post(_encode(doc, draw(st.booleans())), headers, target=target))
    expected = {"jsonrpc": "2.0", "result": value, "id": call_id}
    return Step(data, rid, frozenset({200}), _expect_json(expected), expect, label="echo")


@st.composite
def secret_call(draw: st.DrawFn) -> Step:
    """A private call: token in a header (served); absent, twice, or only in a trailer
    (refused)."""
    rid = _request_id()
    doc = {"jsonrpc": "2.0", "method": "secret", "params": ["x"], "id": 7}
    where = draw(st.sampled_from(["header", "none", "trailer", "twice"]))
    headers = _api_headers(rid)
    if where == "twice":
        # The same valid token twice is still refused: a server that picks one of two
        # credentials can be made to pick the wrong one.
        headers += [("X-Api-Token", TOKEN), ("X-Api-Token", TOKEN)]
        data = draw(_post(_encode(doc, True), headers))
        check = _expect_error(ACCESS_DENIED, 7)
    elif where == "header":
        headers.append(("X-Api-Token", TOKEN))
        data = draw(_post(_encode(doc, True), headers))
        check = _expect_json({"jsonrpc": "2.0", "result": "secret for x", "id": 7})
    else:
        # RFC 9112 7.1.2: trailer fields are never merged into the headers; credentials in
        # particular never come from a trailer.
        trailers = [("X-Api-Token", TOKEN)] if where == "trailer" else None
        data = draw(_post(_encode(doc, True), headers, trailers))
        check = _expect_error(ACCESS_DENIED, 7)
    return Step(data, rid, frozenset({200}), check, label=f"secret/{where}")


@st.composite
def trailer_call(draw: st.DrawFn) -> Step:
    """A chunked call whose trailers try to change how the request is handled."""
    rid = _request_id()
    doc = {"jsonrpc": "2.0", "method": "echo", "params": ["t"], "id": 1}
    trailers = draw(
        st.lists(
            st.sampled_from(
                [
                    ("X-Request-Id", "from-a-trailer"),
                    ("Content-Type", "text/plain"),
                    ("X-Note", "ok"),
                ]
            ),
            min_size=1,
            max_size=3,
        )
    )
    data = draw(_post(_encode(doc, True), _api_headers(rid), trailers))
    check = _expect_json({"jsonrpc": "2.0", "result": "t", "id": 1})
    return Step(data, rid, frozenset({200}), check, label="trailers")


@st.composite
def batch_call(draw: st.DrawFn) -> Step:
    """A batch of echo calls and notifications (all notifications: no content)."""
    rid = _request_id()
    members = draw(st.lists(st.tuples(json_values, st.booleans()), min_size=1, max_size=4))
    calls, expected = [], {}
    for index, (value, notify) in enumerate(members):
        call: dict[str, Any] = {"jsonrpc": "2.0", "method": "echo", "params": [value]}
        if not notify:
            call["id"] = index
            expected[index] = value
        calls.append(call)
    data = draw(_post(_encode(calls, draw(st.booleans())), _api_headers(rid)))

    def check(response: Response) -> None:
        if not expected:
            assert response.body == b"", response.body
            return
        answers = response.json()
        assert isinstance(answers, list), answers
        assert {item["id"]: item["result"] for item in answers} == expected, answers
        assert len(answers) == len(expected), answers

    return Step(data, rid, frozenset({200} if expected else {204}), check, label="batch")


@st.composite
def notification(draw: st.DrawFn) -> Step:
    rid = _request_id()
    doc = {"jsonrpc": "2.0", "method": "echo", "params": [draw(json_values)]}
    data = draw(_post(_encode(doc, True), _api_headers(rid)))

    def check(response: Response) -> None:
        assert response.body == b"", response.body

    return Step(data, rid, frozenset({204}), check, label="notification")


@st.composite
def livez(draw: st.DrawFn) -> Step:
    """GET /livez over HTTP/1.1, or over HTTP/1.0 (closed after, unless kept alive)."""
    rid = _request_id()
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]))
    headers = [("X-Request-Id", rid)]
    keep_alive = version == "HTTP/1.1" or draw(st.booleans())
    if version == "HTTP/1.0" and keep_alive:
        headers.append(("Connection", "keep-alive"))
    data = request_head("GET", "/livez", headers, version)
    # An HTTP/1.0 keep-alive is an extension a server may decline (then it says close).
    may_close = version == "HTTP/1.0"
    label = f"livez/{version}"
    return Step(data, rid, frozenset({200}), None, False, may_close, not keep_alive, label)


@st.composite
def refused(draw: st.DrawFn) -> Step:
    """A well-framed request the server refuses: wrong method, media type, path or JSON."""
    rid = _request_id()
    kind = draw(
        st.sampled_from(
            ["get-api", "text-plain", "no-route", "bad-json", "unknown-method", "coding", "http10"]
        )
    )
    call = _encode({"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1}, True)
    if kind == "get-api":
        return Step(
            request_head("GET", "/api", [("X-Request-Id", rid)]),
            rid,
            frozenset({405}),
            may_close=True,
            label=kind,
        )
    if kind == "text-plain":
        data = draw(_post(call, _api_headers(rid, "text/plain")))
        return Step(data, rid, frozenset({415}), may_close=True, label=kind)
    if kind == "no-route":
        data = draw(_post(call, _api_headers(rid), target="/nowhere"))
        return Step(data, rid, frozenset({404, 405}), may_close=True, label=kind)
    if kind == "bad-json":
        body = draw(st.sampled_from([b"{", b"[1,", b"nul", b'{"a":NaN}', b"\xff\xfe", b""]))
        data = draw(_post(body, _api_headers(rid)))
        return Step(data, rid, frozenset({200}), _expect_error(-32700, None), label=kind)
    if kind == "unknown-method":
        doc = {"jsonrpc": "2.0", "method": "no_such_method", "params": [1], "id": "u"}
        data = draw(_post(_encode(doc, True), _api_headers(rid)))
        return Step(data, rid, frozenset({200}), _expect_error(-32601, "u"), label=kind)
    if kind == "coding":
        # A coding the server does not decode is refused, never read as if absent (RFC 9110 8.4).
        data = draw(_post(call, [*_api_headers(rid), ("Content-Encoding", "x-fuzz")]))
        return Step(data, rid, frozenset({415}), may_close=True, label=kind)
    # HTTP/1.0 POST, with Expect: 100-continue, which a 1.0 client must never be answered with.
    head = request_head(
        "POST",
        "/api",
        [*_api_headers(rid), ("Content-Length", str(len(call))), ("Expect", "100-continue")],
        "HTTP/1.0",
    )
    check = _expect_json({"jsonrpc": "2.0", "result": 1, "id": 1})
    return Step(head + call, rid, frozenset({200}), check, must_close=True, label=kind)


answered = st.one_of(
    echo_call(), secret_call(), trailer_call(), batch_call(), notification(), livez(), refused()
)
