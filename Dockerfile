# syntax=docker/dockerfile:1
# Scout: one image for every process (`scout migrate | api | worker | scheduler | verify ...`).
#
#   docker build -t scout:local .
#   docker run --rm scout:local --help
#
# Configuration is environment only (SCOUT_* variables, see scout/settings.py); docker-compose.yml
# wires a whole deployment.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv with the dependencies, then the project ------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/scout
ENV PATH=/opt/scout/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer stays cached while only code changes.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The packages named in [tool.hatch.build.targets.wheel].
COPY scout/ scout/
COPY ingest_api/ ingest_api/
COPY streams/ streams/
COPY sql/ sql/
COPY jobs/ jobs/
COPY quality/ quality/
COPY simulator/ simulator/
COPY observability/ observability/
COPY docs/RUNBOOK.md docs/RUNBOOK.md
RUN pip install . \
    && scout --help > /dev/null

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="scout" \
      org.opencontainers.image.description="Scout streaming medallion pipeline (ingest API, stream worker, scheduler)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/scout/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCOUT_DATA_DIR=/var/lib/scout

# SCOUT_DATA_DIR must exist and be writable: the stream worker creates $SCOUT_DATA_DIR/faust at start
# (without parents) and exits if it cannot.
RUN groupadd --system --gid 10001 scout \
    && useradd --system --uid 10001 --gid scout --home-dir /home/scout --create-home \
        --shell /usr/sbin/nologin scout \
    && install -d -o scout -g scout -m 0750 /var/lib/scout

COPY --from=build /opt/scout /opt/scout

USER scout:scout
WORKDIR /home/scout

# The ingest API listens here when SCOUT_API_HOST=0.0.0.0 (the default 127.0.0.1 is unreachable
# from outside the container).
EXPOSE 8000

ENTRYPOINT ["scout"]
CMD ["--help"]
