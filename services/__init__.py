"""Deployable processes: district node, municipal worker, sinks."""
