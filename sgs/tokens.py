"""Department tokens as secrets (issue 16): the config holds an scrypt hash of each token, never the token.

A token is `<department id>.<secret>` (`sgs tokens new DEPT` makes one): the id says which single hash to check, so
a request costs one scrypt, not one per department, and a token once checked is remembered by its SHA-256 for the
life of the process, so only the first request with a token pays. The comparison is constant-time.

The shipped config's departments have no hash: their development tokens are `dev-<department id>`, well known and
never secret, and a node accepts them only when it runs with `--dev` (which `sgs up` sets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

SCHEME = "scrypt"
_N, _R, _P = (
    2**14,
    8,
    1,
)  # ~16 MiB and tens of milliseconds a check: dear to guess offline, once per token here
DEV_PREFIX = "dev-"


def new_token(department_id: str) -> str:
    return f"{department_id}.{secrets.token_urlsafe(32)}"


def dev_token(department_id: str) -> str:
    """The development token of a department in the shipped config (accepted only with `--dev`)."""
    return f"{DEV_PREFIX}{department_id}"


def hash_token(token: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$<salt>$<hash>` (base64), what the config's `token_hash` holds."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"{SCHEME}${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_hash_format(text: str) -> bool:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(p.isdigit() for p in parts[1:4]):
        return False
    try:
        return len(base64.b64decode(parts[5], validate=True)) == 32 and bool(base64.b64decode(parts[4]))
    except ValueError:
        return False


def matches(token: str, token_hash: str) -> bool:
    """Whether `token` is the one `token_hash` was made from (constant-time comparison of the digests)."""
    scheme, n, r, p, salt, digest = token_hash.split("$")
    expected = base64.b64decode(digest)
    got = hashlib.scrypt(
        token.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return scheme == SCHEME and hmac.compare_digest(got, expected)


class TokenChecker:
    """Department id of a token, against the hashes of the config; `dev`: the development tokens are accepted."""

    def __init__(self, hashes: dict[str, str | None], *, dev: bool) -> None:
        self._hashes = hashes  # department id -> its token hash (None: it has only its development token)
        self._dev = dev
        self._checked: dict[bytes, str] = {}  # SHA-256 of a token checked already -> department id
        self._lock = threading.Lock()

    def department(self, token: str) -> str | None:
        """The department the token belongs to, or None: unknown, wrong, or a development token without `--dev`."""
        if token.startswith(DEV_PREFIX):
            dept = token.removeprefix(DEV_PREFIX)
            return dept if self._dev and dept in self._hashes else None  # no hash needed: it is no secret
        seen = hashlib.sha256(token.encode()).digest()
        with self._lock:
            if seen in self._checked:
                return self._checked[seen]
        dept, _, secret = token.partition(".")
        token_hash = self._hashes.get(dept)
        if not secret or token_hash is None or not matches(token, token_hash):
            return None
        with self._lock:
            self._checked[seen] = dept
        return dept
