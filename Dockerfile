# One image for the four services; docker-compose.yml picks the service by its command.
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH="/opt/venv/bin:$PATH"
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
RUN useradd --system --home /app bg && mkdir -p /app/.stack && chown -R bg /app/.stack
USER bg
ENV BG_STATE_DIR=/app/.stack/state
# python -m services.ingest | services.grouping | services.scoring | services.scoring.alerts | services.projection
CMD ["python", "-m", "services.ingest"]
