# The API image: FastAPI + the built browser UI, without torch (no CUDA in API containers).
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TESSERA_FRONTEND_DIST_DIR=/app/frontend/dist
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core/ core/
COPY backend/ backend/
COPY worker/ worker/
COPY demo/ demo/
COPY tessera/ tessera/
COPY migrations/ migrations/
# Editable, so the Alembic scripts in /app/migrations stay beside the package.
RUN pip install --no-cache-dir -e .
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --system --home /var/lib/tessera tessera && mkdir -p /var/lib/tessera \
    && chown tessera /var/lib/tessera
USER tessera
EXPOSE 8000
CMD ["tessera", "serve", "--host", "0.0.0.0", "--port", "8000"]
