"""The deployable processes, one package each, in the order a record meets them: `node` (a district node),
`worker` (the municipal stream processors), `sink` (provincial and national), and `lag_exporter` beside them.
Each has `__main__.py` (`python -m services.X` is `sgs X`), `cli.py` (its flags), `settings.py` (what it runs
with), `service.py` (its wiring, start and stop), then its parts. No service imports another."""
