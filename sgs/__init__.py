"""Shared domain code of the 双公示 federation: config, records, validation, calendar, serialization, broker."""
