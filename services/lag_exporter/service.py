"""The lag exporter process: the collector behind a small WSGI server (`/metrics`, `/healthz`); SIGINT/SIGTERM stop
it, exit code 0."""

from __future__ import annotations

import signal
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from services.lag_exporter.collector import ConsumerLagCollector
from services.lag_exporter.settings import LagExporterSettings
from sgs.logs import configure_logging


def serve(settings: LagExporterSettings) -> int:
    log = configure_logging("lag-exporter", settings.log_level)
    collector = ConsumerLagCollector(settings.kafka_bootstrap, group_prefix=settings.group_prefix)
    registry = CollectorRegistry()
    registry.register(collector)
    server = serve_metrics(registry, settings.http_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("lag_exporter.ready", bootstrap=settings.kafka_bootstrap, http_port=settings.http_port)
    stop.wait()
    server.shutdown()
    server.server_close()
    collector.close()
    log.info("lag_exporter.stopped")
    return 0


class _QuietHandler(WSGIRequestHandler):
    def log_message(
        self, format: str, *args: object
    ) -> None:  # scrapes every few seconds: not worth a log line
        pass


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> WSGIServer:
    """Serve `/metrics` (the registry) and `/healthz` (process alive) on `port`; the caller runs `serve_forever`."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if environ.get("PATH_INFO") == "/metrics":
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: /metrics, /healthz\n"]

    return make_server(host, port, app, handler_class=_QuietHandler)
