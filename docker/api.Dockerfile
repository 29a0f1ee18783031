# The API image: FastAPI + the built browser UI, without torch (no CUDA in API containers).
# Python packages come from requirements/api.txt (the lock: every file checked against its
# hash), then Tessera's own wheel, which carries the migrations (`tessera migrate`).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TESSERA_FRONTEND_DIST_DIR=/app/frontend/dist
WORKDIR /app
COPY requirements/api.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --home /var/lib/tessera tessera && mkdir -p /var/lib/tessera \
    && chown tessera /var/lib/tessera
USER tessera
EXPOSE 8000
CMD ["tessera", "serve", "--host", "0.0.0.0", "--port", "8000"]
