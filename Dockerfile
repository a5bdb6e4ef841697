# syntax=docker/dockerfile:1
# Stage 1: build the Mini Apps (user /app and admin /admin/miniapp).
FROM node:20-slim AS webapp
WORKDIR /webapp
COPY webapp/package.json webapp/package-lock.json* ./
RUN npm install --no-audit --no-fund
COPY webapp/ ./
RUN npm run build

# Stage 2: the service on a slim Python image, running as a non-root user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PERSISTENT_DATA_PATH=/var/data \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app
RUN useradd --create-home --uid 10001 app && mkdir -p /var/data && chown app:app /var/data
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY tools ./tools
COPY adapters ./adapters
COPY evals ./evals
RUN pip install .
COPY prompts ./prompts
COPY catalog ./catalog
COPY knowledge ./knowledge
COPY legal ./legal
COPY scripts ./scripts
COPY start.sh alembic.ini ./
COPY --from=webapp /webapp/dist ./webapp/dist
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '8000'), timeout=4)"
CMD ["./start.sh"]
