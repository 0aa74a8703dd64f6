"""The stack orchestrator behind ``scripts/stack.py``: run, watch, call and tear down the
Compose stack (locally as processes, or on Docker), and scaffold new services.

Imports point one way, from the command line down:

- ``cli`` parses and dispatches to ``lifecycle`` (up, down), ``views`` (status, smoke, call,
  logs) and ``scaffold`` (new; with ``templates`` and ``textedit``), all through ``context``;
- ``local`` and ``docker_backend`` run a stack; ``state`` records it for crash recovery;
- ``rendered`` reads Compose's own rendering of compose/compose.yaml (``docker compose config``)
  into ``model`` (with ``order``); ``definition`` is the same for ``new``/``remove``'s checks;
- ``procs``, ``probe``, ``logs`` and ``ui`` are small tools; ``errors`` holds ``StackError``.
"""
