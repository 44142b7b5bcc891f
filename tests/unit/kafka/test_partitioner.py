"""Every producer of the federation puts a key where Kafka's default partitioner does (ARCHITECTURE: keys), with the
compiled hash (issue 14): the same partition as Kafka's Java clients, kafka-python's and aiokafka's own."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from sgs.kafka.partitioner import key_hash, partition_by_key

# Kafka's own test vectors (clients' UtilsTest.testMurmur2): murmur2 as a signed 32-bit int
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java"), JAVA.items())
def test_the_hash_is_kafkas(key: bytes, java: int) -> None:
    assert key_hash(key) == java & 0x7FFFFFFF


@given(key=st.binary(max_size=200) | st.text(max_size=60).map(str.encode))
def test_the_hash_is_the_python_clients_own(key: bytes) -> None:
    assert key_hash(key) == kafka_python_murmur2(key) & 0x7FFFFFFF == aiokafka_murmur2(key) & 0x7FFFFFFF


def test_a_key_picks_its_partition_and_no_key_picks_an_available_one() -> None:
    assert partition_by_key(b"foobar", list(range(12)), [0]) == (-790332482 & 0x7FFFFFFF) % 12
    assert {partition_by_key(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
