"""The attribute names spans carry: OpenTelemetry semantic conventions 1.44 (the version of
``opentelemetry-semantic-conventions`` 0.66b that the ``tracing`` extra installs), RPC spans
specialised for JSON-RPC.

Written out here rather than imported: the package keeps these names in a private
(``_incubating``) module, and a test (``tests/unit/test_tracing.py``) checks that they still
match it. Names the conventions have deprecated (``rpc.system``, ``rpc.jsonrpc.request_id``,
``rpc.jsonrpc.error_code``) are not sent.
"""

from __future__ import annotations

from typing import Final

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"

RPC_SYSTEM_NAME: Final = "rpc.system.name"
"""``jsonrpc`` on every span."""
RPC_METHOD: Final = "rpc.method"
"""The JSON-RPC method name (also the span's name)."""
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"
"""The error object's ``code``, as a string; absent on success (JSON-RPC has no success code)."""
ERROR_TYPE: Final = "error.type"
"""On failure only: the error code as a string, or the exception's class when no answer came."""
JSONRPC_PROTOCOL_VERSION: Final = "jsonrpc.protocol.version"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
"""The call's ``id`` as a string; absent for notifications and ``"id": null``."""
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

SYSTEM: Final = "jsonrpc"
VERSION: Final = "2.0"
