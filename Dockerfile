# One image for every movierec process; docker-compose.yml picks the command per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app
RUN useradd --create-home --uid 10001 movierec

# Dependencies first (a cached layer while only code changes), then the code.
COPY pyproject.toml constraints.txt README.md ./
COPY src src
COPY services services
RUN python -m venv .venv \
 && .venv/bin/pip install --upgrade "pip>=24" wheel \
 && .venv/bin/pip install -c constraints.txt -e .

COPY data data
COPY alembic.ini ./
RUN mkdir -p /app/var && chown movierec:movierec /app/var
USER movierec

EXPOSE 8000
CMD ["movierec", "up", "--no-pipeline"]
