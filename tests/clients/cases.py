"""What every third-party client must get from the service, whatever its language: the
expectations the Python and JavaScript client tests share.

The service (``tests/clients/service.py``): ``add``/``multiply`` by position or by name,
``fibonacci`` refuses a negative ``n`` with ``-32602`` and a reason in ``data``, ``reset`` is
private (needs ``X-Api-Token``). A notification is seen arriving in the server's call log.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.conftest import ServiceProcess

INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
ACCESS_DENIED = -32001
FIB_ERROR_DATA = {"reason": "n must be an integer from 0 to 10000"}
# add(a: float, b: float) called with ["ten", 1]: refused from the annotation, before the call.
TYPED_ERROR_DATA = {
    "param": "a",
    "path": "$",
    "reason": "Expected `int | float`, got `str`",
    "expected": "int | float",
}
TOKEN_HEADER = "X-Api-Token"

# A fresh value per notification, so a test finds its own call in the log and no other.
_marks = itertools.count(7001)


def mark() -> int:
    """A number no other notification in this run sends."""
    return next(_marks)


def notification_arrived(service: ServiceProcess, method: str, params: Any) -> None:
    """Wait (10 s at most) for the server to log a notification of ``method`` with ``params``;
    AssertionError if it never does."""
    service.wait_for_log(
        lambda entry: (
            entry.get("method") == method
            and entry.get("notification") is True
            and entry.get("params") == params
        ),
    )
