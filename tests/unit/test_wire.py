"""The wire protocol (``http/wire.py``, ``http/reader.py``) driven without a socket.

A fake transport records what the connection writes; a fake host routes every request to a
handler that answers with the request's body (at once, or later when the test says so). This
makes properties cheap to check exhaustively: a stream split at every possible point gives the
same answers, a long queue is answered in a loop, trailers never reach the headers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from service_template.config import Settings
from service_template.http.framing import Refusal
from service_template.http.head import check_head
from service_template.http.limits import Limits
from service_template.http.request import Request
from service_template.http.wire import Connection


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.reading = True
        self.write_limits: tuple[int | None, int | None] = (None, None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_limits = (high, low)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def abort(self) -> None:
        self.closed = True


class Echo:
    """Answers every request with its body (and the trailer-free value of X-Seen, if any)."""

    def __init__(self, later: bool = False) -> None:
        self.later = later
        self.waiting: list[tuple[Request, Connection]] = []
        self.seen: list[dict[str, str]] = []

    def body_limit(self, request: Request) -> int:
        return 4096

    def check(self, request: Request) -> Refusal | None:
        return None

    def serve(self, request: Request, conn: Connection) -> None:
        self.seen.append(dict(request.headers))
        if self.later:
            self.waiting.append((request, conn))
        else:
            conn.respond(request, 200, request.body or b"{}")


class FakeHost:
    def __init__(self, handler: Echo, **limits: Any) -> None:
        self.limits = Limits(**limits)
        self.handler = handler
        self.rejected: list[int] = []
        self.blocks: list[bool] = []  # what the connection reported to ``blocked``
        self.over_budget = False  # what ``blocked`` answers

    @property
    def draining(self) -> bool:
        return False

    def route(self, request: Request) -> Echo:
        return self.handler

    def count_rejection(self, status: int) -> None:
        self.rejected.append(status)

    def opened(self, conn: Connection) -> bool:
        return True

    def closed(self, conn: Connection) -> None:
        pass

    def blocked(self, conn: Connection, blocked: bool) -> bool:
        self.blocks.append(blocked)
        return blocked and self.over_budget


def run(test: Callable[[], None]) -> None:
    """Run ``test`` with an event loop running (the connection reads the loop's clock)."""

    async def main() -> None:
        test()

    asyncio.run(main())


def connect(handler: Echo, **limits: Any) -> tuple[Connection, FakeTransport]:
    conn = Connection(FakeHost(handler, **limits))  # type: ignore[arg-type]
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


def chunked(body: bytes, trailer: bytes = b"") -> bytes:
    return (
        b"POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
    )


def answers(out: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of every response in ``out``."""
    found = []
    for match in re.finditer(rb"HTTP/1\.1 (\d+) [^\r]*\r\n(.*?)\r\n\r\n", out, re.S):
        length = re.search(rb"Content-Length: (\d+)", match.group(2))
        size = int(length.group(1)) if length else 0
        found.append((int(match.group(1)), out[match.end() : match.end() + size]))
    return found


STREAM = (
    post(b'"one"')
    + chunked(b'"two"', b"X-Seen: trailer\r\n")
    + post(b'"three"', b"X-Seen: header\r\n")
)


def test_a_pipelined_stream_split_at_every_point_gets_the_same_answers() -> None:
    def test() -> None:
        for cut in range(1, len(STREAM)):
            handler = Echo()
            conn, transport = connect(handler)
            conn.data_received(STREAM[:cut])
            conn.data_received(STREAM[cut:])
            assert answers(bytes(transport.out)) == [
                (200, b'"one"'),
                (200, b'"two"'),
                (200, b'"three"'),
            ], cut
            # The trailer never reached the headers; the real header did.
            assert [h.get("x-seen") for h in handler.seen] == [None, None, "header"], cut
            assert not transport.closed

    run(test)


def test_the_stream_byte_by_byte_gets_the_same_answers() -> None:
    def test() -> None:
        conn, transport = connect(Echo())
        for index in range(len(STREAM)):
            conn.data_received(STREAM[index : index + 1])
        assert [status for status, _ in answers(bytes(transport.out))] == [200, 200, 200]

    run(test)


def test_a_huge_header_value_trickled_in_pieces_is_refused_with_431() -> None:
    def test() -> None:
        conn, transport = connect(Echo(), max_header_bytes=1024)
        conn.data_received(b"POST /api HTTP/1.1\r\nHost: a\r\nX-Pad: ")
        for _ in range(100):
            if transport.closed or not conn.receiving:
                break
            conn.data_received(b"a" * 100)  # never a complete field: no callback sees it
        assert answers(bytes(transport.out))[0][0] == 431
        assert not conn.receiving

    run(test)


def test_thousands_of_queued_requests_are_answered_in_a_loop_not_a_recursion() -> None:
    def test() -> None:
        handler = Echo(later=True)
        conn, transport = connect(handler, max_pipelined=10_000)
        conn.data_received(post(b"1") * 5000)  # all queued behind the first
        assert len(handler.waiting) == 1
        handler.later = False  # the rest are answered at once, as their turn comes
        request, _ = handler.waiting.pop()
        conn.respond(request, 200, b"1")
        assert len(answers(bytes(transport.out))) == 5000

    run(test)


def test_a_100_continue_waits_for_the_earlier_response() -> None:
    def test() -> None:
        handler = Echo(later=True)
        conn, transport = connect(handler)
        second_head = post(b"2", b"Expect: 100-continue\r\n")[:-1]  # its body not sent yet
        conn.data_received(post(b"1") + second_head)
        assert b"100 Continue" not in transport.out
        request, _ = handler.waiting.pop()
        conn.respond(request, 200, b"1")
        assert transport.out.endswith(b"HTTP/1.1 100 Continue\r\n\r\n")

    run(test)


def head_of(url: bytes, headers: dict[str, str], version: str = "1.1") -> Request:
    request = Request()
    request.url = url
    request.headers = headers
    request.version = version
    return request


@pytest.mark.parametrize(
    ("url", "path", "target"),
    [
        (b"/api?x=1", "/api", "/api?x=1"),
        (b"http://host:8000/api", "/api", "/api"),
        (b"https://host/api?q=/x", "/api", "/api?q=/x"),
        (b"http://host", "/", "/"),
        (b"http://host?q", "/", "/?q"),
        (b"*", "*", "*"),
    ],
)
def test_the_request_target_forms_give_the_path(url: bytes, path: str, target: str) -> None:
    request = head_of(url, {"host": "a"})
    assert check_head(request) is None
    assert (request.path, request.target) == (path, target)


@pytest.mark.parametrize(
    ("url", "headers", "version"),
    [
        (b"api", {"host": "a"}, "1.1"),  # neither origin nor absolute form
        (b"/api", {}, "1.1"),  # HTTP/1.1 without Host
    ],
)
def test_a_bad_target_or_a_missing_host_is_a_400(
    url: bytes, headers: dict[str, str], version: str
) -> None:
    refusal = check_head(head_of(url, headers, version))
    assert refusal is not None
    assert refusal.status == 400


def test_http_1_0_needs_no_host_but_two_hosts_are_refused_in_any_version() -> None:
    assert check_head(head_of(b"/api", {}, "1.0")) is None
    request = head_of(b"/api", {"host": "a"}, "1.0")
    request.repeated = [("host", "b")]
    refusal = check_head(request)
    assert refusal is not None
    assert refusal.status == 400


def test_while_output_is_unread_nothing_is_read_or_dispatched_until_it_drains() -> None:
    def test() -> None:
        handler = Echo()
        conn, transport = connect(handler)
        conn.pause_writing()  # the transport is above its high-water mark
        assert not transport.reading
        conn.data_received(post(b"1") + post(b"2"))  # already in flight when reading paused
        assert handler.seen == []  # received, not dispatched
        assert transport.out == b""
        conn.resume_writing()  # below the low-water mark again
        assert [body for _, body in answers(bytes(transport.out))] == [b"1", b"2"]
        assert transport.reading

    run(test)


def test_output_left_unread_past_the_write_timeout_closes_the_connection() -> None:
    def test() -> None:
        conn, transport = connect(Echo(), write_timeout=5.0)
        conn.pause_writing()
        now = conn.loop.time()
        assert not conn.due(now + 4.0)
        assert conn.due(now + 5.5)
        conn.expire(now + 5.5)
        assert transport.closed

    run(test)


def test_the_write_buffer_and_pipelining_bounds_come_from_the_settings() -> None:
    limits = Limits.from_settings(Settings(write_buffer_bytes=40_000, max_pipelined=3))
    assert (limits.write_high_water, limits.write_low_water) == (40_000, 10_000)
    assert limits.max_pipelined == 3
    defaults = Limits.from_settings(Settings())
    assert (defaults.write_high_water, defaults.write_low_water) == (256 * 1024, 64 * 1024)
    assert defaults.max_pipelined == 64

    def test() -> None:
        handler = Echo(later=True)  # the first request stays unanswered: the rest queue
        conn, transport = connect(handler, write_high_water=40_000, write_low_water=10_000)
        assert transport.write_limits == (40_000, 10_000)
        conn, transport = connect(handler, max_pipelined=3)
        conn.data_received(b"".join(post(b"%d" % i) for i in range(6)))
        statuses = [status for status, _ in answers(bytes(transport.out))]
        assert statuses == []  # nothing answered yet: the first request is still served
        assert len(conn.queue) == 4  # three waiting, and the fourth refused for good
        assert conn.queue[-1].refusal is not None
        assert conn.queue[-1].refusal.status == 503

    run(test)


def test_a_client_that_stops_reading_past_the_process_budget_is_cut_at_once() -> None:
    def test() -> None:
        conn, transport = connect(Echo())
        host = conn.host
        conn.pause_writing()
        conn.resume_writing()
        assert host.blocks == [True, False]  # type: ignore[attr-defined]
        assert not transport.closed
        host.over_budget = True  # type: ignore[attr-defined]
        conn.pause_writing()
        assert transport.closed  # not left to the write timeout
        assert conn.closing

    run(test)
