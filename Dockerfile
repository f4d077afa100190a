# One image for the API and the worker; the compose file picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLPLAB_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY runstore ./runstore
COPY mlpcore ./mlpcore
COPY mlplab ./mlplab
RUN pip install . \
    && useradd --create-home --uid 1000 mlplab \
    && mkdir -p /data && chown mlplab /data

USER mlplab
EXPOSE 8000
CMD ["uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
