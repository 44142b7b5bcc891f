"""The district node (区县信用子平台): takes departments' records over HTTP, keeps them in a durable outbox until the
broker has them, and tells departments where each record stands (D4, D6, D10, D12).

Read in this order: `settings`, `api` (the HTTP endpoints), `intake` (parsing and checking what departments send),
`store` (the SQLite outbox and receipts), `sender` (outbox -> broker), `receipts` (outcomes coming back), `metrics`,
`service` (start and stop)."""
