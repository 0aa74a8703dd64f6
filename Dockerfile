# One image runs any service of the template: the service is chosen by the command
# (`serve package.module:Class`) or by SERVICE_TARGET.
#
# Written for the classic builder (no RUN --mount, no heredocs), so it builds with or without
# BuildKit.
#
# Base image: any Debian-like image with CPython 3.11 and its venv module.
#   default                     the official python:3.11-slim-bookworm, pinned by digest;
#                               interpreter /usr/local/bin/python3. The digest is refreshed by
#                               Renovate (renovate.json: the dockerfile manager reads this ARG's
#                               default through `FROM ${BASE_IMAGE}` and keeps it pinned), or by
#                               hand as README "Bump the base image" shows; then run the
#                               container tier. Never edit the tag without its digest.
#   no registry / air gap       scripts/make-base-image.sh builds service-template-base:bookworm
#                               from Debian packages (interpreter /usr/bin/python3); pass
#                               --build-arg BASE_IMAGE=service-template-base:bookworm
# All stages use the same base, so the virtual environment's link to the base's interpreter is
# valid in the runtime image whichever base it is.
#
# Dependencies: exactly the versions and files of requirements/runtime.txt (pip
# --require-hashes); the build backend from requirements/build.txt. Both are written by
# `python3 scripts/dev.py lock`.
#
# Network: with wheels in .cache/wheels (scripts/ci/build-wheels.sh), the build installs from
# them only and never touches the network. Without them it installs from the package index,
# still checked against the lock's hashes.
#
# Every stage carries the label org.service-template.stage (build, rootfs, runtime), so what the
# classic builder leaves behind can be told apart: the untagged images of the first stages are
# the layer cache; after a failed build scripts/ci/build-images.sh and `stack.py up --docker`
# remove the images it made (scripts/stacklib/buildlog.py); and
# `docker image prune --filter label=org.service-template.stage` removes every dangling one.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
LABEL org.service-template.stage=build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Two environments: /opt/pip holds the installer and the build backend and stays in this stage;
# /opt/venv is what ships, made without pip so the runtime image carries no installer.
# pip installs into it through --python (pip >= 22.3, which both bases have).
RUN python3 -m venv /opt/pip \
    && python3 -m venv --without-pip /opt/venv

# Dependency layer: it depends only on the locks and the wheels, so a code change does not
# rebuild it. The [s] glob lets the COPY succeed when .cache/wheels does not exist (a glob that
# matches nothing is skipped; the locks always match).
COPY requirements/runtime.txt requirements/build.txt .cache/wheel[s] /tmp/wheels/
# Wheels present: --no-index, so a missing wheel fails the build instead of quietly reaching out.
# --require-hashes: every file must be the one the lock names, whichever way it arrives.
# Bytecode is compiled once here, with hashes not timestamps, because the runtime filesystem is
# read-only and Python must never try to write .pyc files there.
RUN set -eu; \
    if ls /tmp/wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links=/tmp/wheels; fi; \
    /opt/pip/bin/pip install --quiet --require-hashes "$@" -r /tmp/wheels/build.txt; \
    /opt/pip/bin/pip --python /opt/venv/bin/python install --quiet --no-compile \
        --require-hashes "$@" -r /tmp/wheels/runtime.txt; \
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
# stage below). The project is installed editable from /app, where Compose's develop.watch syncs
# each saved file and restarts the container; Python imports it from there with normal
# timestamp-checked bytecode, a new module included. The editable wheel is made by the locked
# build backend of /opt/pip (no index, no isolation) and replaces the installed copy. It runs
# as root, as the build stage does: Compose copies synced files in as the container's user, and
# Docker 20.10 fails to for a user the host itself does not know (uid 10001).
FROM build AS dev
COPY pyproject.toml README.md /app/
COPY service_template/ /app/service_template/
COPY services/ /app/services/
WORKDIR /app
RUN /opt/pip/bin/pip --python /opt/venv/bin/python uninstall --quiet --yes service-template \
    && /opt/pip/bin/python -c "from setuptools import build_meta; build_meta.build_editable('/tmp/editable')" \
    && /opt/pip/bin/pip --python /opt/venv/bin/python install --quiet --no-deps --no-index \
        /tmp/editable/*.whl \
    && rm -rf /tmp/editable build
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, sys, urllib.request\ntry:\n    urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVICE_PORT', '8000'), timeout=3)\nexcept Exception as exc:\n    sys.exit('unhealthy: %s' % exc)"]
ENTRYPOINT ["/opt/venv/bin/python", "-m", "service_template"]
CMD ["serve"]

# ---------------------------------------------------------------------------------------------
# The base, stripped to the interpreter and its libraries: no shell, no apt or dpkg, no pip,
# setuptools or wheel, no setuid bits (scripts/image/prune_runtime.py says what goes and why).
# Exec-form RUN: the base's own Python does it, no shell involved.
FROM ${BASE_IMAGE} AS rootfs
LABEL org.service-template.stage=rootfs
COPY scripts/image/prune_runtime.py /prune_runtime.py
RUN ["python3", "/prune_runtime.py"]

# ---------------------------------------------------------------------------------------------
# From scratch, so that what was pruned is gone from every layer, not hidden under a later one.
# Two layers: the pruned base (rebuilt only when the base changes) and the environment.
FROM scratch AS runtime
LABEL org.service-template.stage=runtime

# DL3067 warns against copying a whole filesystem: here that filesystem is the base, pruned.
# hadolint ignore=DL3067
COPY --from=rootfs / /
# Only the environment crosses over: wheels, sources, pip and its caches stay in the build stage.
COPY --from=build /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root filesystem may be read-only (bytecode is precompiled).
# SERVICE_HOST/PORT: listen on every interface of the container, on the port below.
# PATH and LANG are set again because a scratch image inherits no environment from the base.
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 \
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

# The image's own Python, no curl needed (and no shell: exec form). Healthy only when /readyz
# answers 2xx; any error (503, refused, timeout) exits 1 with a one-line reason that
# `docker inspect` shows. Cheap on purpose, since it runs for the container's whole life: -I -S
# skips site-packages and the environment, and a raw socket replaces urllib.request (whose
# imports of http.client, email and ssl cost more than the rest of the probe): about 40 ms of CPU
# per probe against 75 ms for urllib.request, measured in the container's cgroup.
# No --start-interval: the classic builder of Docker 20.10 rejects the flag (Compose sets it).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/venv/bin/python", "-I", "-S", "-c", "import os, socket, sys\ntry:\n    s = socket.create_connection(('127.0.0.1', int(os.environ.get('SERVICE_PORT', '8000'))), 3)\n    s.sendall(b'GET /readyz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n')\n    line = s.makefile('rb').readline(256).decode('latin-1').strip()\nexcept OSError as exc:\n    sys.exit('unhealthy: %s' % exc)\nif line[9:10] != '2':\n    sys.exit('unhealthy: %s' % (line or 'no answer'))"]

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
