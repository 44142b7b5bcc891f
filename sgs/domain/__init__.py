"""The rules of 双公示 (D1–D18 in ../shared/DOMAIN.md), pure: no Kafka, faust, SQL, HTTP or argparse here.

Read in this order, as a record meets them:
- `kinds`: the two kinds of record, their schemas, a record's identity and content fingerprint (D1, D2, D4);
- `template`: the national template's columns, derived from the Avro schemas; `template_files` reads CSV, XLSX
  and JSON lines uploads; `records` turns a row into a record body (D1, D2);
- `issues`: what is wrong with a row or record, as the sender is told it (D12);
- `identifiers` (统一社会信用代码, 居民身份证号, 组织机构代码, GB/T 2260) and `validation`: the quality check (D3, D12);
- `workdays`: the official working-day calendar and China's date (D5, D6);
- `reconciliation`: the check against the legal-person and population bases (D13);
- `rulebook`: the dated rule sets of `rules.toml` (the seeds' rules; 国家发展改革委令第36号 from 2026-04-01)
  that decide what each tier publishes, for how long, and from when a record can be repaired (D11, D14, D16);
  `periods` counts those periods and `publication` masks what is published (D17);
- `lifecycle`: objections and credit repair on a published record (D15, D16);
- `bulletin`: the monthly figures per district and department (D8).
"""
