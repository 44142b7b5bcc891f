"""Kafka plumbing, in reading order: `topics` (names, keys, retention), `admin` (creating them), `producer` (the
durable producer every writer uses), `partitioner` (murmur2 by key), `offsets` (end offsets read right on any
engine), and the engines: `launch` (what launchers share), `tansu` (the embedded broker)."""
