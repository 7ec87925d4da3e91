# One image for every role of the scale-out topology (docker-compose.yml):
# `sweeps launch`, `sweeps worker` (GPU) and `mlflow server`.
# torch==2.14.1 from PyPI is the CUDA build on x86_64: workers use the GPU when one is
# visible (trainer.device=auto) and the CPU otherwise.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 SWEEPS_DATA_ROOT=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY conf conf
COPY trainer trainer
COPY sweeps sweeps
RUN pip install . && mkdir -p /data /runs
WORKDIR /runs
VOLUME ["/data", "/runs"]
CMD ["sweeps", "--help"]
