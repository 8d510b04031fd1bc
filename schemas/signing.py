"""Signed messages: the check every message that can make the product act passes before it acts.

A signed message is its ordinary JSON object plus one ``seal`` object: the key id, the signer's role,
its wall-clock issue time, its epoch (the guard's fencing token; 0 for other signers) and an Ed25519
signature over the canonical encoding of the whole object with the seal minus its signature. The
verifier checks the object exactly as received (the parsed JSON, not a re-dump of a model), so every
field a reader can see was signed: nothing added, dropped or altered in transit survives.

Keys are bound to a role (``guard``, ``actuators``, ``agent``, ``api``, ``controller``) and a scope,
an ``fnmatch`` pattern over node names (``*``; ``gpu-train-*`` for a pool's agents; one node name for
a per-node key), in a trust file of one line per key::

    <key id> <role> <scope> <base64 raw Ed25519 public key>
    revoke <key id>

Several keys of one role are trusted at once (rotation); a revoked id is refused whatever else the
file says. A private key is one line, ``<key id> <role> <base64 raw private key>``, kept in a file
readable by its process only or in an environment variable.

Pure: no file or clock access (the shell reads the files and passes the wall-clock time in).

>>> signer = Signer.generate("guard-1", "guard")
>>> ring = Keyring.parse(signer.trust_line())
>>> doc = signer.seal({"id": "d-1", "node": "gpu-1"}, issued=1000.0, epoch=3)
>>> verify(doc, ring, {"guard"}, now=1010.0, max_age_s=900).ok
True
>>> verify({**doc, "node": "gpu-2"}, ring, {"guard"}, now=1010.0, max_age_s=900).reason
<DeadLetterReason.BAD_SIGNATURE: 'bad_signature'>
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# A signature check's verdict is the dead-letter reason it is filed under (unsigned, forged, unknown or
# revoked key, wrong signer, expired, replayed...): one list of reasons, not two.
from schemas.deadletter import DeadLetterReason

Refusal = DeadLetterReason

SEAL = "seal"
ROLES = ("guard", "actuators", "agent", "api", "controller", "replay")
"""Who signs what: the guard its decisions; the actuator stage its node-agent commands and action
results; agents their answers; the API levers, plans and tenant reports; an external repair
controller's client (e.g. for NICo) its repair status and the tenant reports that controller recorded."""
FUTURE_SKEW_S = 60.0
"""How far a signer's clock may run ahead of a verifier's before a message counts as future-dated
(hosts keep time with NTP/chrony; see the key management docs)."""


class SigningError(ValueError):
    """A key or trust line that cannot be used; the message names the line or field."""


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    role: str
    scope: str
    public: Ed25519PublicKey

    def covers(self, node: str | None) -> bool:
        return node is None or fnmatch.fnmatchcase(node, self.scope)


@dataclass(frozen=True)
class Keyring:
    """The public keys a verifier trusts, and the ids it refuses."""

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str, revoked: Collection[str] = ()) -> Keyring:
        keys: dict[str, TrustedKey] = {}
        out = set(revoked)
        for n, raw in enumerate(text.splitlines(), 1):
            parts = raw.split("#", 1)[0].split()
            if not parts:
                continue
            if parts[0] == "revoke" and len(parts) == 2:
                out.add(parts[1])
                continue
            if len(parts) != 4 or parts[1] not in ROLES:
                raise SigningError(
                    f"trust line {n}: expected '<key id> <role> <scope> <public key>' with role one of "
                    f"{', '.join(ROLES)}, or 'revoke <key id>'; got {raw.strip()!r}"
                )
            key_id, role, scope, public = parts
            try:
                key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
            except (binascii.Error, ValueError) as err:
                raise SigningError(f"trust line {n}: public key of {key_id!r} is not Ed25519: {err}") from err
            keys[key_id] = TrustedKey(key_id, role, scope, key)
        return cls(keys, frozenset(out))

    def with_revoked(self, ids: Collection[str]) -> Keyring:
        return Keyring(self.keys, self.revoked | frozenset(ids))


@dataclass(frozen=True)
class Signer:
    """One process's private key, its id and its role."""

    key_id: str
    role: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str, role: str) -> Signer:
        if role not in ROLES or not key_id or any(c.isspace() for c in key_id):
            raise SigningError(f"a key needs an id without spaces and a role among {', '.join(ROLES)}")
        return cls(key_id, role, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, line: str) -> Signer:
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ROLES:
            raise SigningError("a private key is one line '<key id> <role> <base64 private key>'")
        try:
            private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(parts[2], validate=True))
        except (binascii.Error, ValueError) as err:
            raise SigningError(f"private key {parts[0]!r} is not Ed25519: {err}") from err
        return cls(parts[0], parts[1], private)

    def private_line(self) -> str:
        raw = self.private.private_bytes_raw()
        return f"{self.key_id} {self.role} {base64.b64encode(raw).decode()}\n"

    def trust_line(self, scope: str = "*") -> str:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.key_id} {self.role} {scope} {base64.b64encode(raw).decode()}\n"

    def seal(self, doc: Mapping[str, Any], issued: float, epoch: int = 0) -> dict[str, Any]:
        """``doc`` (a JSON-ready object, any old seal dropped) with this signer's seal."""
        stamp = {"key": self.key_id, "signer": self.role, "issued": float(issued), "epoch": int(epoch)}
        body = {k: v for k, v in doc.items() if k != SEAL}
        sig = self.private.sign(canonical({**body, SEAL: stamp}))
        return {**body, SEAL: {**stamp, "sig": base64.b64encode(sig).decode()}}


def canonical(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, orjson's shortest float form: the same bytes for the same object,
    whichever side encodes it (orjson reads back every float it wrote to the same value)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Verdict:
    reason: Refusal | None
    detail: str = ""
    key_id: str = ""
    signer: str = ""
    issued: float = 0.0
    epoch: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify(
    doc: Mapping[str, Any],
    keyring: Keyring,
    roles: Collection[str],
    now: float,
    max_age_s: float | None,
    node: str | None = None,
) -> Verdict:
    """Is ``doc`` sealed by a trusted, unrevoked key of one of ``roles`` whose scope covers ``node``,
    with a valid signature, issued no earlier than ``max_age_s`` before ``now`` (None: no bound) and
    not in the future? Epoch and replay are the caller's (they need its state)."""
    stamp = doc.get(SEAL)
    if stamp is None:
        return Verdict(Refusal.UNSIGNED, "no seal: only signed messages may act")
    try:
        key_id, signer, sig = str(stamp["key"]), str(stamp["signer"]), base64.b64decode(stamp["sig"])
        issued, epoch = float(stamp["issued"]), int(stamp["epoch"])
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        return Verdict(Refusal.MALFORMED_SEAL, f"seal unreadable: {err!r}")
    seen = Verdict(None, "", key_id, signer, issued, epoch)
    if key_id in keyring.revoked:
        return replace(seen, reason=Refusal.REVOKED_KEY, detail=f"key {key_id!r} is revoked")
    key = keyring.keys.get(key_id)
    if key is None:
        return replace(seen, reason=Refusal.UNKNOWN_KEY, detail=f"key {key_id!r} is not trusted here")
    if key.role != signer or signer not in roles:
        return replace(
            seen,
            reason=Refusal.WRONG_SIGNER,
            detail=f"key {key_id!r} belongs to {key.role!r}, sealed as {signer!r}; accepted: {sorted(roles)}",
        )
    if not key.covers(node):
        return replace(
            seen,
            reason=Refusal.OUT_OF_SCOPE,
            detail=f"key {key_id!r} may sign for {key.scope!r}, not {node!r}",
        )
    body = {k: v for k, v in doc.items() if k != SEAL}
    unsigned = {k: v for k, v in stamp.items() if k != "sig"}
    try:
        key.public.verify(sig, canonical({**body, SEAL: unsigned}))
    except (InvalidSignature, TypeError):
        return replace(seen, reason=Refusal.BAD_SIGNATURE, detail="signature does not match the message")
    if issued > now + FUTURE_SKEW_S:
        return replace(seen, reason=Refusal.FUTURE_DATED, detail=f"issued {issued - now:.0f}s in the future")
    if max_age_s is not None and now - issued > max_age_s:
        return replace(
            seen, reason=Refusal.EXPIRED, detail=f"issued {now - issued:.0f}s ago (limit {max_age_s:.0f}s)"
        )
    return seen
