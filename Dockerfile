# orch_serv with the example pipeline (flows/ and services_examples/).
#
#   docker build -t orch-serv:local .
#   docker run --rm orch-serv:local orch-serv --help
#
# docker-compose.yml runs one container per role from this image. The example packages
# (flows, services_examples) are not installed: they are imported from the working
# directory /app, the way `orch-serv ... flows.ingest:orchestrator` and
# `python -m services_examples.demo` find them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The library first, so that editing the examples does not reinstall its dependencies.
COPY pyproject.toml README.md ./
COPY orch_serv/ orch_serv/
RUN pip install .

COPY flows/ flows/
COPY services_examples/ services_examples/

# An unprivileged user; /data is where the compose file mounts the shared work directory
# (a named volume takes the ownership of the image's /data when it is first created).
RUN useradd --create-home --uid 10001 orch \
    && mkdir -p /data \
    && chown orch:orch /data
USER orch

CMD ["orch-serv", "--help"]
