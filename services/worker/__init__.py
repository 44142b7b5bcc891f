"""The municipal worker (市信用平台数据处理), a faust-streaming app. Read in this order: `settings` (what it runs
with), `context` (the app, its topics and tables, and how a stage ends a record), `agents` (how messages reach the
stages, top to bottom), `stages/` (one module per stage), `reference_mirror` (the bases, mirrored on every worker),
`aggregates` and `bulletin_counts` (the monthly bulletin's counts), `tansu` (the embedded broker's one quirk),
`metrics`, and `service` (the process: starting and stopping it)."""
