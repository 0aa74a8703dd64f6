"""The only Tornado code: connections, the web application, the server.

``ServiceHandler`` is the base class of a service's own route handlers (``routing.Route``).
"""

from .service_routes import ServiceHandler

__all__ = ["ServiceHandler"]
