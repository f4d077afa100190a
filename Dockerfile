# Two images from one file, one per layer (docker-compose.yml builds each where it belongs):
#   docker build --target api -t mlplab-api .        the HTTP API: `.[server]`, no torch
#   docker build --target worker -t mlplab-worker .  a training worker: `.[worker]`, with torch
# Both hold the orchestration layer (lab/), the run store, the artifact store, the specs and
# the CLI.
FROM python:3.11-slim AS base

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLPLAB_DATA_DIR=/data

WORKDIR /app
# /artifacts owned by mlplab: a new named volume mounted there takes its owner from the image
RUN useradd --create-home --uid 1000 mlplab \
    && mkdir -p /data /artifacts && chown mlplab /data /artifacts
COPY pyproject.toml README.md ./
COPY lab ./lab
COPY runstore ./runstore
COPY mlpcore ./mlpcore
COPY mlplab ./mlplab
COPY artifacts ./artifacts

# The API never imports torch or worker/: neither is in this image.
FROM base AS api
COPY api ./api
RUN pip install '.[server]'
USER mlplab
EXPOSE 8000
CMD ["uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]

# PyPI's torch wheels for Linux bring their CUDA libraries: this image trains on the GPUs.
FROM base AS worker
COPY worker ./worker
RUN pip install '.[worker]'
USER mlplab
CMD ["celery", "-A", "worker.celery_app", "worker", "--pool", "solo", "--concurrency", "1", \
     "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
