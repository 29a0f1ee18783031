# The worker image: CUDA torch for training and MC-dropout scoring, plus Flower.
# requirements/worker-cuda.txt is the lock with PyPI's CUDA build of torch (its CUDA
# libraries come as nvidia-* wheels; the host's driver is enough), every file checked
# against its hash; then Tessera's own wheel.
FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements/worker-cuda.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
RUN useradd --system --home /var/lib/tessera tessera && mkdir -p /var/lib/tessera \
    && chown tessera /var/lib/tessera
USER tessera
CMD ["tessera", "worker", "--concurrency", "1", "--device", "cuda"]
