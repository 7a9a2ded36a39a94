# syntax=docker/dockerfile:1
# Build stage: a wheel of the project and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY sites ./sites
COPY indicators ./indicators
COPY api ./api
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: slim, non-root, the demo by default.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 heritage
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER heritage
WORKDIR /home/heritage
ENV HM_DATA_DIR=/home/heritage/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready').status != 200)"
CMD ["heritage-monitor", "demo", "--host", "0.0.0.0", "--port", "8000"]
