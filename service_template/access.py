"""Who the caller is: a request's principal, from the service's ``authenticate`` or its token
check (``api_token_is_valid``). Any failure means no access (fail closed), logged for the
operator and never shown to the caller.

MicroService's own ``authenticate`` and token compare are cheap and run on the event loop; a
service's plain override may do I/O (a token or identity store) and runs in a small pool of its
own (``AUTH_THREADS``): one that hangs holds those threads, never the methods' ones.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .auth import extract_token
from .context import API_TOKEN_PRINCIPAL, HeaderView
from .declarations import is_builtin

if TYPE_CHECKING:  # the service module imports the runner, which imports this: types only
    from .service import MicroService

# The runtime's logger, as before access had a module of its own: operators filter on it.
log = logging.getLogger("service_template.runtime")

AUTH_THREADS = 4
"""Threads for plain ``api_token_is_valid`` and ``authenticate`` overrides (they usually wait
on a token or identity store)."""


class Access:
    """The service's checks of its callers, each run where it belongs (loop or pool).

    ``run`` wraps work done in a pool thread (the runtime counts busy threads with it).
    """

    def __init__(
        self,
        service: MicroService,
        executor: ThreadPoolExecutor,
        run: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self.service = service
        self.executor = executor
        self._run = run
        self.token_check = service.api_token_is_valid
        # The built-in check is a constant-time compare: cheap enough for the event loop.
        # A user's override may do I/O, so a plain one runs in the thread pool.
        self.token_check_inline = is_builtin(service.api_token_is_valid)
        # The built-in authenticate takes the token path below (authorized); an override is
        # called as it is declared (async on the loop, plain in the pool).
        self.custom_authenticate = not is_builtin(service.authenticate)

    async def authenticate(self, headers: HeaderView) -> Any:
        """The principal of a request (``MicroService.authenticate``), or None; any failure
        means None (fail closed), logged for the operator and never shown to the caller."""
        if not self.custom_authenticate:
            try:
                token = extract_token(self.service.validation_strategies, headers)
            except ValueError:  # a credential the strategies cannot read as one token
                return None
            return API_TOKEN_PRINCIPAL if await self.authorized(token) else None
        check = self.service.authenticate
        try:
            if inspect.iscoroutinefunction(check):
                principal = await check(headers)
            else:
                # Its own small pool, as for api_token_is_valid: a stuck identity store holds
                # those threads, never the methods' ones.
                loop = asyncio.get_running_loop()
                call = functools.partial(self._run, functools.partial(check, headers))
                principal = await loop.run_in_executor(self.executor, call)
        except Exception:
            log.exception("authenticate raised; access denied")
            return None
        return principal or None  # False, "" or 0 prove no identity either

    async def authorized(self, token: str | None) -> bool:
        """Whether ``token`` passes the service's check; any failure means no (fail closed).

        A plain override runs in a small pool of its own (``AUTH_THREADS``): a token store that
        hangs holds those threads, never the methods' ones. The dispatcher bounds the wait by
        the call's deadline (-32002 when it passes).
        """
        if not token:
            return False
        check = self.token_check
        try:
            if self.token_check_inline:
                verdict = check(token)
            elif inspect.iscoroutinefunction(check):
                verdict = await check(token)
            else:
                loop = asyncio.get_running_loop()
                call = functools.partial(self._run, functools.partial(check, token))
                verdict = await loop.run_in_executor(self.executor, call)
        except Exception:
            log.exception("api_token_is_valid raised; access denied")
            return False
        return verdict is True
