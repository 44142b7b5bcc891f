"""Kafka plumbing, in reading order: `topics` (names, keys, retention), `receipts` (what a node's receipts topic
carries: receipts several to a message), `security` (who a process is on Apache Kafka: its certificate, the link
settings every client takes, the ACLs), `admin` (creating topics and ACLs), `producer` (the durable producer every
writer uses), `partitioner` (murmur2 by key), `offsets` (end offsets read right on any engine), and the engines:
`engines` (the one setting, `--engine tansu|kafka` / `SGS_ENGINE`, that picks one, what follows from it, and
`start_engine`), `launch` (what launchers share), `tansu` (the embedded broker), `kraft` (Apache Kafka in KRaft
mode, 1 or 3 nodes, its log on disk)."""
