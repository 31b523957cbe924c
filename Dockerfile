# llmroute gateway image (docs/deploy.md). Build: docker build -t llmroute:0.1.0 .
# Two stages: the build stage installs the package into a virtual environment, pinned by
# constraints.txt (the same pins CI tests), and the runtime stage copies only that environment.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the featurizer's optional kernel (hatch_build.py compiles it at install; the
# runtime stage gets only the built library, inside the virtual environment).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md hatch_build.py ./
COPY src ./src
# Extras to install beside PostgreSQL's driver, e.g. --build-arg EXTRAS=bedrock,azure,otel
# (Bedrock's SigV4 signing needs `bedrock`, Azure Entra tokens `azure`, traces `otel`).
ARG EXTRAS=""
RUN python -m venv /opt/llmroute \
 && /opt/llmroute/bin/pip install -c constraints.txt ".[postgres${EXTRAS:+,$EXTRAS}]"

FROM python:3.11-slim
# A system user with a fixed uid (Kubernetes' runAsUser matches it); its home is the only
# place the gateway writes: the ledger's spool and write-ahead log (and a SQLite ledger when no
# PostgreSQL is configured). Mount a volume there; /tmp is used by `--workers N` only.
RUN groupadd --system --gid 10001 llmroute \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/llmroute --create-home llmroute
COPY --from=build /opt/llmroute /opt/llmroute
# Host, port and workers come from these env vars (LLMROUTE__SECTION__KEY overrides any config
# key); the config is the embedded defaults, or a file mounted at $LLMROUTE_CONFIG.
ENV PATH=/opt/llmroute/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LLMROUTE__SERVER__HOST=0.0.0.0 \
    LLMROUTE__SERVER__PORT=8080 \
    LLMROUTE__SERVER__WORKERS=1 \
    LLMROUTE__LEDGER__SPOOL_PATH=/var/lib/llmroute/llmroute-ledger.spool.jsonl
WORKDIR /var/lib/llmroute
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['LLMROUTE__SERVER__PORT'] + '/health', timeout=2)"]
# uvicorn drains on SIGTERM: stops accepting, waits up to server.graceful_shutdown_s for the
# requests in flight, then the ledger flushes (ledger.close_timeout_s).
STOPSIGNAL SIGTERM
CMD ["llmroute", "serve"]
