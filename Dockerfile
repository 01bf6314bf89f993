# The slamon monitor image: `slamon worker` by default (see docker-compose.yml).

# Build stage: the wheel with the compiled engine (SLAMON_COMPILE=1: mypyc compiles sla/ to
# C; README, "Compiled engine"). gcc is needed here only; pip puts mypy in the isolated build
# environment (setup.py).
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY sla/ sla/
COPY streams/ streams/
COPY agents/ agents/
RUN SLAMON_COMPILE=1 pip wheel --no-deps --wheel-dir /wheels .

# Runtime: the same Python, no compiler, no mypy; the wheel and its dependencies.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && python -c "import sla.engine; assert not sla.engine.__file__.endswith('.py')" \
    && useradd --system --uid 10001 --home-dir /app slamon \
    && mkdir -p /var/lib/slamon \
    && chown slamon /var/lib/slamon
COPY config/ config/

USER slamon
ENV SLAMON_DATA_DIR=/var/lib/slamon \
    SLAMON_STORE=rocksdb://
EXPOSE 6066
CMD ["slamon", "worker"]
