# One image for every process of the federation: the entrypoint is `sgs`, the command picks the subcommand
# (node, worker, sink, lag-exporter, simulate, refbase, ...). docker-compose.yml builds it once.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SGS_CONFIG=/app/federation.toml \
    SGS_DATA_DIR=/var/lib/sgs

WORKDIR /app
COPY . /app
# Pinned versions (requirements.lock) as constraints. Installed in place (-e): the code reads schemas/,
# federation.toml and its page templates from the source tree beside it.
RUN pip install --no-cache-dir -c requirements.lock -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/sgs sgs \
    && mkdir -p /var/lib/sgs \
    && chown sgs /var/lib/sgs

USER sgs
VOLUME ["/var/lib/sgs"]
# node, worker, provincial sink, national sink, lag exporter (each serves /metrics and /healthz)
EXPOSE 8100 6066 8201 8202 9308
ENTRYPOINT ["sgs"]
CMD ["--help"]
