"""Departments, subjects and decisions played at any rate, and the load test. Read in this order: `catalogue` and
`subjects` (what departments decide, and on whom), `generator` (records with faults and their expected outcomes),
`decisions` (objections and credit repairs), `driver` and `cli` (`sgs simulate`), `files` (template and refbase
files), `tree` (the national tree for scale runs), then `bench/` (`sgs bench`)."""
