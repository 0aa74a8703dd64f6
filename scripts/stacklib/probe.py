"""Look at one running service over HTTP: readiness, metrics, and one real JSON-RPC call.

Standard library only and self-contained, because the Docker backend runs this very file's
source inside a container (``python -c``) to reach services that publish no port; the local
backend calls ``probe`` directly. ``summarize_metrics`` turns the Prometheus page into the few
numbers ``status`` shows.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from typing import Any

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_OUTCOME = re.compile(r'outcome="([^"]*)"')


def _get(url: str, timeout: float) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def _discover(base: str, timeout: float) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}).encode()
    request = urllib.request.Request(  # noqa: S310 - the caller gives an http:// URL
        base + "/api", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return {"error": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"error": str(getattr(exc, "reason", exc))}
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict) or not isinstance(result.get("methods"), list):
        error = answer.get("error") if isinstance(answer, dict) else None
        return {"error": f"not an OpenRPC document: {json.dumps(error or answer)[:200]}"}
    info = result.get("info")
    if not isinstance(info, dict):
        info = {}
    return {"title": str(info.get("title", "?")), "methods": len(result["methods"])}


def probe(
    base: str, metrics: bool = True, discover: bool = False, timeout: float = 3.0
) -> dict[str, Any]:
    """What a service at ``base`` (``http://host:port``) answers; never raises for the service's
    faults. Keys: ``ready`` (HTTP status or None), ``ready_detail``, ``metrics`` (page text or
    None), ``discover`` ({"title", "methods"} or {"error"})."""
    status, text = _get(base + "/readyz", timeout)
    result: dict[str, Any] = {"ready": status, "ready_detail": text.strip()[:200]}
    if metrics:
        code, page = _get(base + "/metrics", timeout)
        result["metrics"] = page if code == 200 else None
    if discover:
        result["discover"] = _discover(base, timeout)
    return result


def summarize_metrics(page: str) -> dict[str, float]:
    """Calls, errors and calls in flight from the service's Prometheus page."""
    calls = errors = in_flight = 0.0
    for line in page.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if name == "rpc_calls_total":
            calls += value
            outcome = _OUTCOME.search(labels)
            if outcome is not None and outcome.group(1) != "ok":
                errors += value
        elif name == "rpc_calls_in_flight":
            in_flight += value
    return {"calls": calls, "errors": errors, "in_flight": in_flight}


if __name__ == "__main__":  # run in a container: python -c SOURCE '[base, metrics, discover]'
    print(json.dumps(probe(*json.loads(sys.argv[1]))))
