"""Signing what Liaison sends to a CAD's webhook, and how the CAD checks it
(docs/webhook.md)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Liaison-Signature"
TIMESTAMP_HEADER = "Liaison-Timestamp"
DELIVERY_ID_HEADER = "Liaison-Delivery-Id"
SEQUENCE_HEADER = "Liaison-Sequence"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The `Liaison-Signature` header value for a body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, signature: str | None) -> bool:
    """For the CAD: is `signature` (the `Liaison-Signature` header) right for `body`?

    `body` must be the raw bytes received, before any JSON parsing. The comparison takes
    the same time whatever the mismatch. Then drop repeats by `Liaison-Delivery-Id` and,
    per call, anything with a `sequence` at or below the last one applied.

        body = await request.body()
        if not verify_signature(SECRET, body, request.headers.get("Liaison-Signature")):
            return Response(status_code=401)
    """
    if not signature or not signature.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode())

