# The worker image: CUDA torch for training and MC-dropout scoring, plus Flower.
FROM pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core/ core/
COPY backend/ backend/
COPY worker/ worker/
COPY tessera/ tessera/
COPY migrations/ migrations/
# The base image's CUDA torch satisfies the engine; the pin in the worker extra is for the
# CPU wheel of developer machines, so install the other worker packages explicitly.
RUN pip install --no-cache-dir -e ".[monitor]" "scikit-image>=0.22" "scipy>=1.11" "matplotlib>=3.8"
RUN useradd --system --home /var/lib/tessera tessera && mkdir -p /var/lib/tessera \
    && chown tessera /var/lib/tessera
USER tessera
CMD ["tessera", "worker", "--concurrency", "1", "--device", "cuda"]
