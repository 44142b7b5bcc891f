"""The bytes on the wire: `codec` encodes and decodes Avro records (both framings); `signing` signs what a process
writes and checks what it reads (Ed25519, in Kafka headers). Read `codec` first."""

from sgs.serialization.codec import (
    SINGLE_OBJECT_MAGIC,
    Codec,
    SchemaRegistry,
    SerializationError,
    default_codec,
    plain_schema,
)

__all__ = [
    "SINGLE_OBJECT_MAGIC",
    "Codec",
    "SchemaRegistry",
    "SerializationError",
    "default_codec",
    "plain_schema",
]
