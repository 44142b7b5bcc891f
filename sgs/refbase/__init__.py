"""The legal-person base (法人库, keyed by 统一社会信用代码) and the population base (人口库, keyed by 居民身份证号), in
reading order: `store` (the tables, SQLite or PostgreSQL, and which rows a load changes), `load` (their CSV files),
`publisher` (every changed row published to `sgs.ref.*`, so the workers see changes without a restart). The check
of D13 against them is `sgs.domain.reconciliation`."""
