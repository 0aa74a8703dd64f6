"""service_template: JSON-RPC 2.0 microservices on Tornado, the modern descendant of gemstone.

from service_template import MicroService, public_method, private_api_method
"""

from typing import TYPE_CHECKING

from .auth import (
    BasicCookieStrategy,
    BearerStrategy,
    CookieStrategy,
    HeaderStrategy,
    HeaderValidationStrategy,
    tokens_match,
)
from .config import Settings
from .context import CallInfo, Principal, current_call
from .declarations import private_api_method, public_method, readiness_check
from .errors import ConfigError, StartupError
from .protocol.errors import (
    AccessDenied,
    DeadlineExceeded,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RPCError,
    ServerOverloaded,
)
from .routing import Route
from .service import MicroService
from .settings import Secret, setting

if TYPE_CHECKING:  # typed for users; imported lazily at run time (see __getattr__)
    from .client import AsyncRemoteClient, RemoteClient
    from .discovery import get_service_by_name

__all__ = [
    "AccessDenied",
    "AsyncRemoteClient",
    "BasicCookieStrategy",
    "BearerStrategy",
    "CallInfo",
    "ConfigError",
    "CookieStrategy",
    "DeadlineExceeded",
    "HeaderStrategy",
    "HeaderValidationStrategy",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "MicroService",
    "ParseError",
    "Principal",
    "RPCError",
    "RemoteClient",
    "Route",
    "Secret",
    "ServerOverloaded",
    "Settings",
    "StartupError",
    "current_call",
    "get_service_by_name",
    "private_api_method",
    "public_method",
    "readiness_check",
    "setting",
    "tokens_match",
]


def __getattr__(name: str) -> object:
    # The client pulls in httpx; import it only for code that uses it, so a service that never
    # calls another one does not pay for it in start-up time and memory.
    if name in ("RemoteClient", "AsyncRemoteClient"):
        from . import client

        return getattr(client, name)
    if name == "__version__":
        from .version import project_version

        return project_version()
    if name == "get_service_by_name":
        from .discovery import get_service_by_name

        return get_service_by_name
    raise AttributeError(f"module 'service_template' has no attribute {name!r}")
