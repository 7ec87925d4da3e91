# One image for every role of the scale-out topology (docker-compose.yml):
# `sweeps launch`, `sweeps worker` (GPU) and `mlflow server` (basic auth).
# torch==2.14.1 from PyPI is the CUDA build on x86_64: workers use the GPU when one is
# visible (trainer.device=auto) and the CPU otherwise.
# The base image is pinned to an exact release; pin its digest too (docker buildx
# imagetools inspect python:3.11.11-slim-bookworm) where builds must be bit-for-bit.
FROM python:3.11.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 SWEEPS_DATA_ROOT=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY conf conf
COPY trainer trainer
COPY sweeps sweeps
RUN pip install . \
    && useradd --create-home --uid 10001 sweeps \
    && mkdir -p /data /runs /mlflow && chown sweeps:sweeps /data /runs /mlflow
# Never root at run time: a compromised trial or server cannot own the host's volumes.
USER sweeps
WORKDIR /runs
VOLUME ["/data", "/runs", "/mlflow"]
CMD ["sweeps", "--help"]
