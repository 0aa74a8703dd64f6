# Prometheus from Debian's package, for the Compose profile "metrics" where the official
# prom/prometheus image cannot be pulled (no registry: CI here, an air gap with a Debian mirror).
# Built by scripts/ci/build-images.sh FROM the same local base as the service image:
#   docker build --build-arg BASE_IMAGE=service-template-base:bookworm \
#       -t service-template-prometheus:bookworm - <compose/prometheus.Dockerfile
# (on stdin: it needs no build context).
# compose.yaml gives the flags (config file, storage path) and mounts the configuration.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# Versions are the suite's current ones, security updates included: a pinned Debian revision is
# removed from the mirror once superseded, which would break this build (hence DL3008 ignored).
# wget is there for the health probe compose.yaml shares with the official image.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/*

# nobody, as in the official image; storage is a tmpfs that compose.yaml mounts at /prometheus.
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
