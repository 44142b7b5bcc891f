"""The worker's stages, one module each, in the order a record meets them: `validate` (D12), `dedup` (D4),
`reconcile` (D13), `timeliness` (D5, D6), `route` (D10, D11, D14-D17); `decide` takes decisions on records already
relayed (D15, D16). Each is plain functions over the shared `Context`, called by the agents (`agents.py`)."""
