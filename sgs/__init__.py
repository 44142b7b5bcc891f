"""What every process of the 双公示 federation shares. Read in this order:
- `config` (federation.toml: the tree of nodes and departments, sinks, stores) and `logs` (one JSON line each);
- `domain/`: the rules D1–D18, pure (records, validation, calendar, publication, lifecycle, the bulletin's figures);
- `serialization/`: Avro on the wire; `kafka/`: topics, producers, offsets and the broker engines;
- `refbase/`: the legal-person and population bases; `bulletin/`: `sgs report`'s reading and rendering;
- `cli/`: the `sgs` console script and its shared commands; `ops/`: running the processes (`sgs up`, faults).
The deployable processes are in `services/`, the load and fault tools in `simulators/`; docs/architecture.md walks a
record through all of them.
"""
