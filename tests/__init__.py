"""The test suite: `unit/<layer>/` (no processes; one folder per package of the code) and `integration/` (real
brokers, stores and service processes). Shared helpers live in `support/`, imported as `tests.support.…`."""
