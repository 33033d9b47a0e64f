# devlog server image (for docker-compose.yml). Point it at PostgreSQL/TimescaleDB with
# DEVLOG_DATABASE_URL; the embedded PostgreSQL is meant for single-user installs, not containers.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 devlog
WORKDIR /opt/devlog
COPY pyproject.toml README.md ./
COPY app ./app
COPY ui ./ui
COPY collector ./collector
COPY migrations ./migrations
COPY graphql ./graphql
RUN pip install . && rm -rf /opt/devlog/build

USER devlog
ENV DEVLOG_HOST=0.0.0.0 DEVLOG_PORT=3200
EXPOSE 3200
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3200/readyz', timeout=4).status != 200)"]
CMD ["devlog", "serve"]
