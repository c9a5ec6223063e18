"""Reports signed with the grader's key (`--sign KEY`), checked with its public half (`check-lab verify
REPORT --key KEY.pub`): an Ed25519 signature over the report's JSON in canonical form (keys sorted, no
spaces), everything but the signature itself. A report edited after it was signed – a verdict, a score, the
machine's identity, the nonce – no longer verifies. Keys as `ssh-keygen -t ed25519` makes them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

ALGORITHM = "ed25519"


class SigningKeyError(ValueError):
    """A key that cannot sign or verify (missing, not Ed25519, protected by a passphrase)."""


def canonical(data: dict) -> bytes:
    return json.dumps({k: v for k, v in data.items() if k != "signature"}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def load_private(path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    try:
        if raw.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key = serialization.load_ssh_private_key(raw, password=None)
        else:
            key = serialization.load_pem_private_key(raw, password=None)
    except TypeError:
        raise SigningKeyError(f"the key {path} is protected by a passphrase: sign with a key without one") from None
    except ValueError as exc:
        raise SigningKeyError(f"{path} is not a private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the key {path} is not an Ed25519 key (ssh-keygen -t ed25519 makes one)")
    return key


def load_public(path: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    try:
        key = (serialization.load_pem_public_key(raw) if raw.lstrip().startswith(b"-----BEGIN")
               else serialization.load_ssh_public_key(raw.strip()))
    except ValueError as exc:
        raise SigningKeyError(f"{path} is not a public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"the key {path} is not an Ed25519 key")
    return key


def public_line(public_key) -> str:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def sign(data: dict, private_key) -> dict:
    """The report with its signature (the key's public half in it, to say whose it is)."""
    value = base64.b64encode(private_key.sign(canonical(data))).decode()
    return {**data, "signature": {"algorithm": ALGORITHM, "public_key": public_line(private_key.public_key()),
                                  "value": value}}


def sign_text(text: str, private_key) -> str:
    return json.dumps(sign(json.loads(text), private_key), indent=2) + "\n"


def verify(data: dict, public_key) -> str | None:
    """None when the report was signed by this key and not changed since; else why not, in one line."""
    from cryptography.exceptions import InvalidSignature

    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict) or "value" not in signature:
        return "the report is not signed"
    if signature.get("algorithm") != ALGORITHM:
        return f"the report is signed with {signature.get('algorithm')!r}, not {ALGORITHM}"
    if signature.get("public_key", "").split()[:2] != public_line(public_key).split()[:2]:
        return "the report is signed with another key than this one"
    try:
        public_key.verify(base64.b64decode(signature["value"]), canonical(data))
    except (InvalidSignature, ValueError):
        return "the report was changed after it was signed (its signature does not match its content)"
    return None
