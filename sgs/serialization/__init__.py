"""Avro on the wire, in reading order: `schemas` loads `schemas/*.avsc`; `codec` encodes and decodes both framings
(single-object, Confluent) and turns every library error into `SerializationError`; `compiled` turns each of our
schemas into the plain-Python writer and reader the codec uses (fastavro's bytes, faster, issue 14);
`registry` is the Confluent Schema Registry client the codec uses when `SGS_SCHEMA_REGISTRY_URL` is set; `signing`
signs what a process writes and checks who wrote what it reads (Ed25519 in Kafka headers, issue 16)."""
