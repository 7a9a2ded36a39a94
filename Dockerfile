# syntax=docker/dockerfile:1
# Heritage Monitor container image (see docs/operations.md).
#
#   docker build -t heritage-monitor .
#   docker run --rm -p 8000:8000 heritage-monitor          # the demo, synthetic data, no credentials
#   docker compose up -d                                   # API + scheduler + PostGIS (compose.yaml)
#
# The base image is pinned to a Python patch release and Debian suite; bump it deliberately (both
# stages use the same one, so the virtual environment's interpreter link stays valid).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build stage: a virtual environment holding the project and its dependencies -------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/heritage
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY sites ./sites
COPY indicators ./indicators
COPY api ./api
# A regular (non-editable) install: the runtime stage needs no source tree and no build tools.
RUN /opt/heritage/bin/pip install --no-cache-dir . \
    && find /opt/heritage -name '__pycache__' -type d -prune -exec rm -rf {} +

# --- runtime stage: slim, non-root, the demo by default ------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="Heritage Monitor" \
      org.opencontainers.image.description="Copernicus data -> heritage risk indicators -> alerts and an API" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/heritage/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HM_DATA_DIR=/var/lib/heritage \
    NUMBA_CACHE_DIR=/home/heritage/.cache/numba
# The data dir exists and belongs to the service user, so a named volume mounted there inherits it.
RUN groupadd --system --gid 10001 heritage \
    && useradd --system --uid 10001 --gid heritage --create-home --home-dir /home/heritage heritage \
    && mkdir -p /var/lib/heritage \
    && chown heritage:heritage /var/lib/heritage
COPY --from=build /opt/heritage /opt/heritage
USER 10001:10001
WORKDIR /home/heritage
VOLUME ["/var/lib/heritage"]
EXPOSE 8000
# Readiness of the API on port 8000 (the database answers). The demo computes its history before it
# listens, hence the long start period. Processes without HTTP (the scheduler) disable this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4).status == 200 else 1)"]
CMD ["heritage-monitor", "demo", "--host", "0.0.0.0", "--port", "8000"]
