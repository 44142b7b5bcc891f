"""Signatures on the wire (issue 16): what a signature binds, who may sign what, keys in the config, rotation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sgs.cli import main
from sgs.config import ConfigError, Federation, load_config
from sgs.serialization.signing import (
    BATCH_MAX,
    PROOF_HEADER,
    SIGNATURE_HEADER,
    SIGNER_HEADER,
    Keyring,
    SignatureError,
    Signer,
    encode_public,
    key_path,
    local_keys,
    new_key_file,
)
from tests.support.signed import signer

TOPIC, KEY, VALUE = "sgs.relay.national", b"penalty:1:2", b"\xc3\x01avro bytes"


@pytest.fixture
def keyring(federation: Federation) -> Keyring:
    return Keyring.of(federation)


def test_a_signed_message_is_checked_and_its_signer_returned(keyring: Keyring) -> None:
    h = signer("worker").headers(TOPIC, KEY, VALUE)
    assert keyring.check(TOPIC, KEY, VALUE, h, {"worker"}) == "worker"
    assert keyring.check(TOPIC, KEY, VALUE, dict(h), {"worker"}) == "worker"  # faust gives headers as a dict


@pytest.mark.parametrize(
    "topic, key, value",
    [
        ("sgs.relay.provincial", KEY, VALUE),  # replayed onto another topic
        (TOPIC, b"penalty:1:3", VALUE),  # under another record's key
        (TOPIC, None, VALUE),
        (TOPIC, KEY, VALUE + b"\x00"),  # one byte more
    ],
)
def test_a_signature_binds_topic_key_and_exact_bytes(
    keyring: Keyring, topic: str, key: bytes | None, value: bytes
) -> None:
    h = signer("worker").headers(TOPIC, KEY, VALUE)
    with pytest.raises(SignatureError) as err:
        keyring.check(topic, key, value, h, {"worker"})
    assert err.value.rule == "signature.invalid"


BATCH = [
    (TOPIC, f"penalty:1:{i}".encode(), VALUE + bytes([i])) for i in range(7)
]  # odd: a level pairs with itself


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 130])
def test_a_batch_is_signed_once_and_each_message_is_checked_on_its_own(
    federation: Federation, keyring: Keyring, size: int
) -> None:
    """Issue 14: one signature for a batch of messages (the root of a Merkle tree over them); each message carries
    its proof and checks alone, in any order, in a reader that has seen none of the others."""
    batch = [(TOPIC, f"penalty:1:{i}".encode(), VALUE + str(i).encode()) for i in range(size)]
    headers = signer("worker").batch_headers(batch)
    assert len({dict(h)[SIGNATURE_HEADER] for h in headers}) == -(-size // BATCH_MAX)  # one per 64
    assert all(len(dict(h).get(PROOF_HEADER, b"")) <= 4 + 6 * 32 for h in headers)
    for (topic, key, value), h in reversed(list(zip(batch, headers, strict=True))):
        assert Keyring.of(federation).check(topic, key, value, h, {"worker"}) == "worker"
        assert keyring.check(topic, key, value, dict(h), {"worker"}) == "worker"


@pytest.mark.parametrize(
    "change",
    [
        lambda t, k, v, p: ("sgs.relay.provincial", k, v, p),  # replayed onto another topic
        lambda t, k, v, p: (t, b"penalty:1:99", v, p),  # under another key
        lambda t, k, v, p: (t, k, v + b"\x00", p),  # one byte more
        lambda t, k, v, p: (t, k, BATCH[1][2], p),  # another message's bytes of the same batch
        lambda t, k, v, p: (t, k, v, p[:4] + bytes(32) + p[36:]),  # a forged sibling
        lambda t, k, v, p: (t, k, v, (1).to_bytes(4, "big") + p[4:]),  # another position
        lambda t, k, v, p: (t, k, v, p[:-32]),  # a level short
        lambda t, k, v, p: (t, k, v, p + bytes(32)),  # a level too many
        lambda t, k, v, p: (t, k, v, p[:-1]),  # not whole hashes
    ],
)
def test_a_batch_signature_binds_each_message_and_its_place(keyring: Keyring, change) -> None:
    h = signer("worker").batch_headers(BATCH)[0]
    topic, key, value = BATCH[0]
    keyring.check(topic, key, value, h, {"worker"})  # the root is now known to the reader: proofs still count
    topic, key, value, proof = change(topic, key, value, dict(h)[PROOF_HEADER])
    forged = [(n, proof if n == PROOF_HEADER else v) for n, v in h]
    with pytest.raises(SignatureError) as err:
        keyring.check(topic, key, value, forged, {"worker"})
    assert err.value.rule == "signature.invalid"


def test_a_batch_signature_is_no_single_signature_and_names_its_signer(keyring: Keyring) -> None:
    topic, key, value = BATCH[0]
    h = dict(signer("worker").batch_headers(BATCH)[0])
    without_proof = [(SIGNER_HEADER, h[SIGNER_HEADER]), (SIGNATURE_HEADER, h[SIGNATURE_HEADER])]
    with pytest.raises(SignatureError) as err:
        keyring.check(topic, key, value, without_proof, {"worker"})
    assert err.value.rule == "signature.invalid"
    claimed = [
        (SIGNER_HEADER, b"sink.national"),
        *list(h.items())[1:],
    ]  # the worker's batch claimed by a sink
    with pytest.raises(SignatureError) as err:
        keyring.check(topic, key, value, claimed, {"sink.national"})
    assert err.value.rule == "signature.invalid"
    node = signer("node.310101").batch_headers(BATCH)[0]  # genuine, but a node may not write a relay
    with pytest.raises(SignatureError) as err:
        keyring.check(topic, key, value, node, {"worker"})
    assert err.value.rule == "signature.wrong_signer"


def test_missing_unknown_and_unauthorised_signers_are_refused_by_rule(keyring: Keyring) -> None:
    good = signer("node.310101").headers(TOPIC, KEY, VALUE)
    cases = [
        (None, "signature.missing"),
        ([(SIGNER_HEADER, b"worker")], "signature.missing"),
        ([(SIGNER_HEADER, b"mallory"), (SIGNATURE_HEADER, b"x" * 64)], "signature.unknown_signer"),
        (
            [(SIGNER_HEADER, b"worker"), good[1]],
            "signature.invalid",
        ),  # a node's signature claimed as the worker's
        (good, "signature.wrong_signer"),  # genuine, but a node may not write a relay
    ]
    for headers, rule in cases:
        with pytest.raises(SignatureError) as err:
            keyring.check(TOPIC, KEY, VALUE, headers, {"worker"})
        assert err.value.rule == rule


def test_two_keys_per_signer_during_a_rotation(federation: Federation, tmp_path: Path) -> None:
    new = new_key_file(tmp_path / "worker.key")
    keys = {**federation.keys, "worker": (*federation.keys["worker"], encode_public(new))}
    ring = Keyring(keys)
    for s in (signer("worker"), Signer.from_file("worker", tmp_path / "worker.key")):
        assert ring.check(TOPIC, KEY, VALUE, s.headers(TOPIC, KEY, VALUE), {"worker"}) == "worker"
    assert ring.signer(tmp_path, "worker").id == "worker"
    with pytest.raises(ConfigError, match="not among keys.worker"):
        Keyring(federation.keys).signer(tmp_path, "worker")  # the new key before it is listed


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "worker.key"
    new_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        new_key_file(path)
    assert path.read_bytes() == before


def test_a_process_without_its_key_or_the_config_without_a_signer_does_not_start(
    federation: Federation, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="sgs keys new worker"):
        Keyring.of(federation).signer(tmp_path, "worker")
    with pytest.raises(ConfigError, match=r"keys\.node\.310000: missing"):
        Keyring.of(load_config())  # the shipped file lists no keys: `sgs up` makes them


@pytest.mark.parametrize(
    "table, message",
    [
        ('"worker" = ["bm90IGEga2V5"]', "not a base64 Ed25519 public key"),
        (
            '"node.999999" = ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]',
            "not a signer of this federation",
        ),
        ('"worker" = []', "one public key, or two"),
    ],
)
def test_the_config_refuses_bad_keys_naming_the_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "federation.toml"
    path.write_text(load_config().path.read_text(encoding="utf-8") + f"\n[keys]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_sgs_keys_new_prints_the_line_the_config_takes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["keys", "new", "sink.national", "--key-dir", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    public = Signer.from_file("sink.national", key_path(tmp_path, "sink.national")).public_key
    assert line == f'"sink.national" = ["{encode_public(public)}"]'
    assert main(["keys", "new", "sink.national", "--key-dir", str(tmp_path)]) == 2  # never overwritten
    assert main(["keys", "new", "root", "--key-dir", str(tmp_path)]) == 2
    assert "not a signer" in capsys.readouterr().err


def test_local_keys_are_kept_across_runs(tmp_path: Path) -> None:
    first = load_config(local_keys(load_config(), tmp_path))
    second = load_config(local_keys(load_config(), tmp_path))
    assert first.keys == second.keys and set(first.keys) == set(first.signers())
