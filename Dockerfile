# The slamon monitor image: `slamon worker` by default (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sla/ sla/
COPY streams/ streams/
COPY agents/ agents/
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app slamon \
    && mkdir -p /var/lib/slamon \
    && chown slamon /var/lib/slamon
COPY config/ config/

USER slamon
ENV SLAMON_DATA_DIR=/var/lib/slamon \
    SLAMON_STORE=rocksdb://
EXPOSE 6066
CMD ["slamon", "worker"]
