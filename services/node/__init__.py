"""The district node (区县信用子平台): takes departments' records over HTTP, keeps them in a durable outbox until the
broker has them, and tells departments where each record stands (D4, D6, D10, D12)."""
