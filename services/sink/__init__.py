"""Provincial and national sinks (省公共信用信息中心, 信用中国): relay topic -> store -> query API and public page.

Read in this order: `settings`, `consumer` (the relay topic into the store, receipts back), `store` (what a tier
holds, exactly once), `api` and `views` (the public query API, the disclosure page, D17), `metrics`, `service`."""
