"""Example services, one image for all: ``hello`` (gemstone's), ``compute`` (used by the
benchmark) and ``gateway`` (calls the other two by service name)."""

TARGETS = {
    "hello": "service_template.examples.hello:HelloService",
    "compute": "service_template.examples.compute:ComputeService",
    "gateway": "service_template.examples.gateway:GatewayService",
}
