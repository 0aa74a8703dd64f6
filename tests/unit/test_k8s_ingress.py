"""The production Ingress publishes exactly the stack's public entry point: the services Compose
publishes on the host, at /api only, over TLS, on a port their Service really has."""

from __future__ import annotations

from tests.unit.test_k8s_consistency import compose_services, of_kind, render


def public_services() -> set[str]:
    """The app services Compose publishes on the host (tools in profiles, such as Prometheus,
    are not part of the app)."""
    return {
        name
        for name, service in compose_services().items()
        if service.get("ports") and not service.get("profiles")
    }


def test_the_ingress_routes_only_api_to_the_published_services_over_tls() -> None:
    docs = render("prod")
    services = {doc["metadata"]["name"]: doc for doc in of_kind(docs, "Service")}
    routed = set()
    for ingress in of_kind(docs, "Ingress"):
        spec = ingress["spec"]
        tls_hosts = {host for entry in spec.get("tls", []) for host in entry["hosts"]}
        for rule in spec["rules"]:
            assert rule["host"] in tls_hosts, f"{rule['host']} is served without TLS"
            for path in rule["http"]["paths"]:
                assert (path["path"], path["pathType"]) == ("/api", "Exact")
                backend = path["backend"]["service"]
                port_names = {
                    port.get("name") for port in services[backend["name"]]["spec"]["ports"]
                }
                assert backend["port"]["name"] in port_names
                routed.add(backend["name"])
    assert routed == public_services()


def test_dev_has_no_ingress() -> None:
    assert of_kind(render("dev"), "Ingress") == []
