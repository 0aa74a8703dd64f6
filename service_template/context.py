"""The call's context, as a service reads it: ``current_call()`` and who the caller is.

    from service_template import current_call

    @public_method
    def whoami(self) -> dict[str, object]:
        call = current_call()
        return {"method": call.method, "request_id": call.request_id,
                "agent": call.headers.get("User-Agent"), "principal": str(call.principal)}

``current_call()`` works in async methods, in plain methods (run in the thread pool with the
caller's context) and in hooks; each member of a batch sees its own method and id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .protocol.calls import CallInfo, HeaderView, current_call

__all__ = ["API_TOKEN_PRINCIPAL", "CallInfo", "HeaderView", "Principal", "current_call"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``subject`` names it (a user id, a JWT's ``sub``); ``claims``
    carries what the authenticator vouches for (scopes, tenant). Never put the credential here:
    principals may reach logs.

    ``MicroService.authenticate`` may return any object; this one is a convenient default.
    """

    subject: str
    claims: Mapping[str, Any] = field(default_factory=dict)


API_TOKEN_PRINCIPAL = Principal("api-token")
"""The principal of a caller whose API token ``api_token_is_valid`` accepted."""
