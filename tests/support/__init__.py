"""What the tests share, in reading order: `paths` (where the repository is), `polling` (waiting for a condition),
the record builders (`node_records`, `worker_records`, `sink_records`, `report_aggregates`), the service processes
(`service_process` and its `node_process`, `worker_process`, `sink_process`) and `headless_chromium`."""
