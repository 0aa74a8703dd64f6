# One image runs any service of the template: the service is chosen by the command
# (`serve package.module:Class`) or by SERVICE_TARGET.
#
# Written for the classic builder (no RUN --mount, no heredocs), so it builds with or without
# BuildKit.
#
# Base image: any Debian-like image with CPython 3.11 and its venv module.
#   default                     the official python:3.11-slim (interpreter /usr/local/bin/python3)
#   no registry / air gap       scripts/make-base-image.sh builds service-template-base:bookworm
#                               from Debian packages (interpreter /usr/bin/python3); pass
#                               --build-arg BASE_IMAGE=service-template-base:bookworm
# Both stages use the same base, so the virtual environment's link to the base's interpreter is
# valid in the runtime stage whichever base it is.
#
# Network: with wheels in .cache/wheels (scripts/ci/build-wheels.sh), the build installs from
# them only and never touches the network. Without them it installs from the package index.
ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Two environments: /opt/pip holds the installer and the build backend and stays in this stage;
# /opt/venv is what ships, made without pip so the runtime image carries no installer.
# pip installs into it through --python (pip >= 22.3, which both bases have).
RUN python3 -m venv /opt/pip \
    && python3 -m venv --without-pip /opt/venv

# Dependency layer: it depends only on pyproject.toml and the wheels, so a code change does not
# rebuild it. The [s] glob lets the COPY succeed when .cache/wheels does not exist (a glob that
# matches nothing is skipped; pyproject.toml always matches).
COPY pyproject.toml .cache/wheel[s] /tmp/wheels/
# Wheels present: --no-index, so a missing wheel fails the build instead of quietly reaching out.
# Requirements are read from pyproject.toml (tomllib is in 3.11's standard library).
# Bytecode is compiled once here, with hashes not timestamps, because the runtime filesystem is
# read-only and Python must never try to write .pyc files there.
RUN set -eu; \
    if ls /tmp/wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links=/tmp/wheels; fi; \
    python3 -c 'import sys, tomllib; print(*tomllib.load(sys.stdin.buffer)["build-system"]["requires"], sep="\n")' \
        </tmp/wheels/pyproject.toml >/tmp/build-requirements.txt; \
    python3 -c 'import sys, tomllib; print(*tomllib.load(sys.stdin.buffer)["project"]["dependencies"], sep="\n")' \
        </tmp/wheels/pyproject.toml >/tmp/requirements.txt; \
    /opt/pip/bin/pip install --quiet "$@" -r /tmp/build-requirements.txt; \
    /opt/pip/bin/pip --python /opt/venv/bin/python install --quiet --no-compile "$@" \
        -r /tmp/requirements.txt; \
    /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv/lib

# Project layer: only this and the layers after it rebuild on a code change. The wheel is built
# with the backend installed above (no build isolation, so no network in this step) and
# installed without dependencies, which the layer above already provides.
COPY pyproject.toml README.md /src/
COPY service_template/ /src/service_template/
COPY services/ /src/services/
RUN /opt/pip/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/dist /src \
    && /opt/pip/bin/pip --python /opt/venv/bin/python install --quiet --no-compile --no-deps \
        --no-index /tmp/dist/*.whl \
    && site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash \
        "$site/service_template" "$site/services"

# ---------------------------------------------------------------------------------------------
# Development target (`stack.py up --docker --watch`; never the default, which is the runtime
# stage below). The code runs from /app, where Compose's develop.watch syncs each saved file
# and restarts the container: `python -m` puts the working directory first on sys.path, so
# /app/service_template and /app/services take the place of the installed copies, with normal
# timestamp-checked bytecode. It runs as root, as the build stage does: Compose copies synced
# files in as the container's user, and Docker 20.10 fails to for a user the host itself does
# not know (uid 10001).
FROM build AS dev
COPY service_template/ /app/service_template/
COPY services/ /app/services/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8000
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, sys, urllib.request\ntry:\n    urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVICE_PORT', '8000'), timeout=3)\nexcept Exception as exc:\n    sys.exit('unhealthy: %s' % exc)"]
ENTRYPOINT ["/opt/venv/bin/python", "-m", "service_template"]
CMD ["serve"]

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

# Only the environment crosses over: wheels, sources, pip and its caches stay in the build stage.
COPY --from=build /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only (bytecode is precompiled).
# SERVICE_HOST/PORT: listen on every interface of the container, on the port below.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8000

# An empty working directory: a derived image can drop its own service module here and serve it
# (`serve mymodule:MyService`), since `python -m` puts the working directory on sys.path.
WORKDIR /app

# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd entry. It owns nothing in
# the image: the code cannot be modified by the process that runs it.
USER 10001:10001

EXPOSE 8000

# The image's own Python, no curl needed. Healthy only when /readyz answers 2xx; any error
# (503, refused, timeout) exits 1 with a one-line reason that `docker inspect` shows.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, sys, urllib.request\ntry:\n    urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVICE_PORT', '8000'), timeout=3)\nexcept Exception as exc:\n    sys.exit('unhealthy: %s' % exc)"]

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="service-template" \
      org.opencontainers.image.description="Container-first JSON-RPC 2.0 microservice template on Tornado" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Exec form: Python is PID 1 (or the child of --init) and receives SIGTERM itself, so a stop
# drains in-flight calls and exits 0 instead of being killed after the grace period.
ENTRYPOINT ["/opt/venv/bin/python", "-m", "service_template"]
CMD ["serve"]
