"""The Kafka engines the federation runs on, started by the project itself on loopback.

Read in this order:
- `engines.py`: the one setting that picks the engine (`--engine tansu|kafka`, `SGS_ENGINE`) and what follows
  from it (transactions or not, which workarounds apply), and `start_engine`, which starts either;
- `kraft.py`: Apache Kafka in KRaft mode, 1 or 3 combined broker+controller nodes, its log on disk;
- the embedded Tansu launcher is still `sgs/broker.py` (with topic creation and the durable producer).
"""
