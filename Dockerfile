# syntax=docker/dockerfile:1
# tracking-consumer: Kafka consumer that turns carrier tracking scans into Redo API calls.
#
#   docker build -t tracking-consumer:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --read-only --tmpfs /tmp --env-file consumer.env \
#     -v "$PWD/redo-secret:/etc/tracking-consumer/redo:ro" tracking-consumer:0.1.0
#
# Without a Docker engine or Docker Hub: `make image` (buildah, with a locally made Debian base
# passed as PYTHON_IMAGE; scripts/image-check.sh).
#
# Two stages: the build stage makes the project's wheel and a virtualenv from binary wheels only
# (confluent-kafka, fastavro and pydantic-core ship manylinux wheels, so no compiler is needed
# and a dependency that would need one fails the build instead of slipping in); the runtime
# stage is the slim base plus that virtualenv, without pip, running as a numeric non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Only what the wheel is built from (see .dockerignore).
COPY pyproject.toml README.md ./
COPY avro ./avro
COPY consumer ./consumer
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --only-binary=:all: /wheels/*.whl \
 && /opt/venv/bin/tracking-consumer --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="tracking-consumer" \
      org.opencontainers.image.description="Kafka consumer that turns carrier tracking scans into Redo Update Fulfillment Status calls" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A numeric UID/GID so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
RUN groupadd --system --gid 10001 consumer \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin consumer

COPY --from=build /opt/venv /opt/venv

# Read-only root filesystem: bytecode is compiled at build time and never written at run time;
# the only writable place is /tmp (a volume: emptyDir in the chart, --tmpfs with docker run).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    METRICS_PORT=9108
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 9108

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('METRICS_PORT', '9108'), timeout=4)"]

# Exec form, no shell in between: SIGTERM from `docker stop` or the kubelet reaches the consumer
# (PID 1), which drains in-flight calls, commits and exits within SHUTDOWN_GRACE_SECONDS.
ENTRYPOINT ["tracking-consumer"]
CMD ["run"]
