"""Who wrote a message: every process signs what it writes with its own Ed25519 key, and every reader checks the
signature against the public keys the federation config lists for the signer it expects (issue 16).

The broker is the trust boundary: anyone who can reach it can write any topic (the embedded engine has no
authentication at all). A signature binds the topic, the key and the exact value bytes, so a genuine message
replayed onto another topic or under another key fails too. It travels in two Kafka headers, `sgs-signer` (who:
`node.<division code>`, `worker`, `sink.<tier>`) and `sgs-signature` (64 bytes); the Avro bytes are untouched,
so a reader that knows nothing of signatures reads them as before.

Signers, their key files and the config's `[keys]` table:
- a private key is a PEM file `<key dir>/<signer>.key` (mode 0600), outside the repository (`sgs keys new`);
- the config lists each signer's public keys (base64 of the 32 raw bytes); two during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sgs.config import ConfigError, Federation
from sgs.serialization.codec import Codec

SIGNER_HEADER = "sgs-signer"
SIGNATURE_HEADER = "sgs-signature"
PROOF_HEADER = "sgs-proof"  # only on a message signed as one of a batch (`Signer.batch_headers`)
WORKER = "worker"
_DOMAIN = b"sgs-message-v1\x00"  # a signature made for anything else never verifies here
_BATCH_DOMAIN = b"sgs-batch-v1\x00"  # a batch's root: neither kind of signature passes for the other
_LEAF, _NODE = b"\x00", b"\x01"  # hash prefixes: an inner node never passes for a message, nor the reverse
_LENGTH = struct.Struct(">i")
_INDEX = struct.Struct(">I")
BATCH_MAX = 64  # messages under one signature: a proof of 4 + 6 x 32 bytes each
_VERIFIED_ROOTS = 4096  # batch roots whose signature a reader has checked, kept until there are this many
_RELATIVE_FILE = re.compile(r'^(\s*(?:book|calendar_overrides)\s*=\s*)"([^"]*)"', re.M)  # paths in a config

Headers = Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None


def node_signer(code: str) -> str:
    return f"node.{code}"


def sink_signer(tier: str) -> str:
    return f"sink.{tier}"


class SignatureError(Exception):
    """A message whose signature is missing, unknown, wrong, or from a signer not allowed to write it. `rule` is
    the rejection rule (`signature.missing`, `signature.unknown_signer`, `signature.invalid`,
    `signature.wrong_signer`)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def refusal(codec: Codec, error: SignatureError, original: bytes, node: str | None = None) -> bytes:
    """The `sgs.Rejection` (stage `signature`) of a message refused unread, carrying its bytes: it names no record
    or department, since nothing in a message that failed its check can be believed."""
    return codec.encode(
        "sgs.Rejection",
        {
            "receipt_id": None,
            "record_id": None,
            "version": None,
            "source_node": node,
            "department": None,
            "stage": "signature",
            "original": original,
            "reasons": [{"field": "-", "rule": error.rule, "message": str(error), "value": None}],
            "rejected_at": datetime.now(UTC),
        },
    )


def signed_bytes(topic: str, key: bytes | None, value: bytes | None) -> bytes:
    """What is signed: the topic, the key and the value, each length-prefixed (-1 for none, as Kafka does), so no
    two different messages sign the same bytes."""
    out = bytearray(_DOMAIN)
    for part in (topic.encode(), key, value):
        if part is None:
            out += _LENGTH.pack(-1)
        else:
            out += _LENGTH.pack(len(part)) + part
    return bytes(out)


def _leaf(topic: str, key: bytes | None, value: bytes | None) -> bytes:
    return hashlib.sha256(_LEAF + signed_bytes(topic, key, value)).digest()


def _parent(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _merkle(leaves: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The root of a Merkle tree over `leaves` (a level of odd length pairs its last node with itself) and each
    leaf's proof: its index, then the sibling hash at every level from the bottom."""
    proofs = [bytearray(_INDEX.pack(i)) for i in range(len(leaves))]
    members = [[i] for i in range(len(leaves))]  # which leaves each node of the level covers
    level = leaves
    while len(level) > 1:
        if len(level) % 2:
            level, members = [*level, level[-1]], [*members, []]
        for i in range(0, len(level), 2):
            for leaf in members[i]:
                proofs[leaf] += level[i + 1]
            for leaf in members[i + 1]:
                proofs[leaf] += level[i]
        level = [_parent(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        members = [members[i] + members[i + 1] for i in range(0, len(members), 2)]
    return level[0], [bytes(p) for p in proofs]


def _root_of(leaf: bytes, proof: bytes) -> bytes | None:
    """The root a leaf and its proof lead to; None for a proof that is not one."""
    if len(proof) < _INDEX.size or (len(proof) - _INDEX.size) % 32 or len(proof) > _INDEX.size + 32 * 32:
        return None
    (index,) = _INDEX.unpack_from(proof)
    node = leaf
    for at in range(_INDEX.size, len(proof), 32):
        sibling = proof[at : at + 32]
        node = _parent(sibling, node) if index & 1 else _parent(node, sibling)
        index >>= 1
    return node if index == 0 else None


def encode_public(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def decode_public(text: str) -> Ed25519PublicKey:
    """A public key as the config writes it; ValueError when it is not base64 of 32 bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{text!r} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_path(key_dir: Path, signer: str) -> Path:
    return key_dir / f"{signer}.key"


def new_key_file(path: Path) -> Ed25519PublicKey:
    """Make a private key in `path` (created with mode 0600, never overwritten); its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(path, "(file)", "already exists; a key is never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key.public_key()


class Signer:
    """One process's signing identity: its signer id and private key."""

    def __init__(self, signer: str, key: Ed25519PrivateKey) -> None:
        self.id = signer
        self._key = key
        self._id_bytes = signer.encode()

    @classmethod
    def from_file(cls, signer: str, path: Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(
                path,
                "(file)",
                f"cannot read the signing key of {signer}: {exc.strerror or exc} "
                f"(make one with `sgs keys new {signer}`)",
            ) from None
        except (ValueError, TypeError) as exc:
            raise ConfigError(path, "(file)", f"not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(path, "(file)", "not an Ed25519 private key")
        return cls(signer, key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def headers(self, topic: str, key: bytes | None, value: bytes | None) -> list[tuple[str, bytes]]:
        """The two headers to send with this message."""
        signature = self._key.sign(signed_bytes(topic, key, value))
        return [(SIGNER_HEADER, self._id_bytes), (SIGNATURE_HEADER, signature)]

    def batch_headers(
        self, messages: Sequence[tuple[str, bytes | None, bytes | None]]
    ) -> list[list[tuple[str, bytes]]]:
        """The headers of each of `messages` (topic, key, value) sent together, with one signature for all of them
        (issue 14: a signature costs far more CPU than the rest of a message): the root of a Merkle tree over the
        messages is signed, and each message carries that signature and its proof (`sgs-proof`: its index and
        one SHA-256 per level), so each is still checked on its own, and a reader checks a root's signature
        once. A signature covers up to BATCH_MAX messages, so a proof stays a few hashes long; a message alone is
        signed as `headers` does."""
        out: list[list[tuple[str, bytes]]] = []
        for at in range(0, len(messages), BATCH_MAX):
            chunk = messages[at : at + BATCH_MAX]
            if len(chunk) == 1:
                out.append(self.headers(*chunk[0]))
                continue
            root, proofs = _merkle([_leaf(*m) for m in chunk])
            signature = self._key.sign(_BATCH_DOMAIN + root)
            out += [
                [(SIGNER_HEADER, self._id_bytes), (SIGNATURE_HEADER, signature), (PROOF_HEADER, proof)]
                for proof in proofs
            ]
        return out


def _header(headers: Headers, name: str) -> bytes | None:
    if not headers:
        return None
    items: Iterable[tuple[str, bytes]] = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        if k == name:
            return bytes(v) if v is not None else None
    return None


class Keyring:
    """The public keys of every signer, from the federation config (`Federation.keys`)."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._keys = {signer: tuple(decode_public(k) for k in texts) for signer, texts in keys.items()}
        # (signer, signature, root) of the batches already checked: the other messages of a batch need only
        # their proof (`Signer.batch_headers`)
        # (a dict: each step is atomic under the GIL, and the node checks receipts and decisions on two threads)
        self._verified: dict[tuple[str, bytes, bytes], None] = {}

    @classmethod
    def of(cls, federation: Federation) -> Keyring:
        """The federation's keyring; a config that lacks the key of any signer cannot be run (exit 2), since
        every message that signer wrote would be refused."""
        for signer in federation.signers():
            if signer not in federation.keys:
                raise ConfigError(
                    federation.path, f"keys.{signer}", f"missing (make it with `sgs keys new {signer}`)"
                )
        return cls(federation.keys)

    def signer(self, key_dir: Path, signer: str) -> Signer:
        """This process's signing identity, from `<key_dir>/<signer>.key`, which must match a key the config
        lists for it (else everything it writes would be refused where it is read)."""
        path = key_path(key_dir, signer)
        loaded = Signer.from_file(signer, path)
        raw = loaded.public_key.public_bytes_raw()
        if not any(k.public_bytes_raw() == raw for k in self._keys.get(signer, ())):
            raise ConfigError(path, "(file)", f"its public key is not among keys.{signer} of the config")
        return loaded

    def node_signers(self, key_dir: Path, codes: Iterable[str]) -> dict[str, Signer]:
        """Node code -> its signing identity, for a process that speaks for these nodes."""
        return {code: self.signer(key_dir, node_signer(code)) for code in codes}

    def check(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        allowed: Collection[str],
    ) -> str:
        """The signer of a message when its signature verifies with one of the signer's listed keys and the
        signer is one of `allowed`; otherwise `SignatureError`."""
        signer_raw, signature = _header(headers, SIGNER_HEADER), _header(headers, SIGNATURE_HEADER)
        if signer_raw is None or signature is None:
            raise SignatureError("signature.missing", "消息未签名")
        signer = signer_raw.decode("utf-8", "replace")
        public_keys = self._keys.get(signer)
        if not public_keys:
            raise SignatureError("signature.unknown_signer", f"签名者 {signer[:64]!r} 不在联邦配置中")
        proof = _header(headers, PROOF_HEADER)
        if proof is None:
            verified = self._verifies(public_keys, signature, signed_bytes(topic, key, value))
        else:
            root = _root_of(_leaf(topic, key, value), proof)
            verified = root is not None and self._batch_verifies(signer, public_keys, signature, root)
        if not verified:
            raise SignatureError("signature.invalid", f"{signer} 的签名不符（消息被篡改或挪用）")
        if signer not in allowed:
            raise SignatureError(
                "signature.wrong_signer",
                f"{signer} 无权写此消息（应为 {', '.join(sorted(allowed)) or '无'}）",
            )
        return signer

    @staticmethod
    def _verifies(public_keys: Sequence[Ed25519PublicKey], signature: bytes, data: bytes) -> bool:
        for public in public_keys:
            try:
                public.verify(signature, data)
                return True
            except InvalidSignature:
                continue
        return False

    def _batch_verifies(
        self, signer: str, public_keys: Sequence[Ed25519PublicKey], signature: bytes, root: bytes
    ) -> bool:
        seen = (signer, signature, root)
        if seen in self._verified:
            return True
        if not self._verifies(public_keys, signature, _BATCH_DOMAIN + root):
            return False
        if len(self._verified) >= _VERIFIED_ROOTS:
            self._verified.clear()  # a batch's messages arrive together: only the latest roots are worth keeping
        self._verified[seen] = None
        return True


def local_keys(federation: Federation, key_dir: Path) -> Path:
    """For a federation run on one machine (`sgs up`, `sgs bench`, the tests) or a demo deployment
    (docker-compose.yml): a key for every signer in `key_dir` (made once, kept across runs), and a copy of the
    config, which lists no keys, listing their public keys; the copy's path. The copy lives in `key_dir`, so the
    files the config names relative to itself (`rules.book`, `timeliness.calendar_overrides`) are named by
    their absolute paths there."""
    if federation.keys:
        raise ConfigError(
            federation.path, "keys", "lists keys already: local keys are for a config without them"
        )
    key_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "",
        "# Signing keys of a federation on one machine, made by `sgs keys local` (issue 16).",
        "[keys]",
    ]
    for signer in federation.signers():
        path = key_path(key_dir, signer)
        public = Signer.from_file(signer, path).public_key if path.exists() else new_key_file(path)
        lines.append(f'"{signer}" = ["{encode_public(public)}"]')
    config = key_dir / "federation.toml"
    text = _RELATIVE_FILE.sub(
        lambda m: (
            f'{m[1]}"{federation.path.parent / m[2]}"' if m[2] and not Path(m[2]).is_absolute() else m[0]
        ),
        federation.path.read_text(encoding="utf-8"),
    )
    config.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    return config
