"""The webhook's pieces without a server: signing, backoff, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.outbound import WebhookConfig, backoff
from service.outbox.rows import body_of
from service.outbox.signing import sign, verify_signature
from service.settings import Settings

SECRET = "test-secret-shared-with-the-cad"

# RFC 4231 section 4, HMAC-SHA-256 (test case 5 is about truncated output: left out).
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
                    b"block-size data. The key needs to be hashed before being used by the "
                    b"HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]
FIXED_BODY = b'{"sequence":42,"type":"decision","call_id":"c1"}'
# Computed once outside Python, with OpenSSL, from the contract's words ("sha256=<hex
# HMAC-SHA256 of the raw body, keyed with the shared secret>"):
#   printf '%s' '{"sequence":42,"type":"decision","call_id":"c1"}' \
#     | openssl dgst -sha256 -hmac 'test-secret-shared-with-the-cad'
# (Plain SHA-256 of the body, for contrast, is 08ba9ec7…9c20fa.)
FIXED_SIGNATURE = "sha256=9268374033242acbe09cff53f90625f296e8859e84a17db1c01d0c9457abd945"


@pytest.mark.parametrize(("key", "data", "mac"), RFC_4231)
def test_signing_is_hmac_sha256_by_the_published_test_vectors(key: bytes, data: bytes,
                                                               mac: str) -> None:
    assert sign(key, data) == f"sha256={mac}"
    assert verify_signature(key, data, f"sha256={mac}")


def test_a_fixed_body_gets_the_signature_computed_outside_liaison() -> None:
    body = body_of(42, '{"type":"decision","call_id":"c1"}')
    assert body == FIXED_BODY
    assert sign(SECRET, body) == FIXED_SIGNATURE
    assert sign(SECRET.encode(), body) == FIXED_SIGNATURE
    assert verify_signature(SECRET, body, FIXED_SIGNATURE)


def test_signature_helper_accepts_only_the_exact_body_and_secret() -> None:
    body = FIXED_BODY
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(SECRET, body, header)
    assert verify_signature(SECRET.encode(), body, header)
    assert not verify_signature(SECRET, body.replace(b"42", b"43"), header)
    assert not verify_signature("another secret", body, header)
    assert not verify_signature(SECRET, body, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, "sha1=" + header[7:])
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "")


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    assert backoff(1, 1.0, 60.0, rand=lambda: 1.0) == 1.0
    assert backoff(4, 1.0, 60.0, rand=lambda: 1.0) == 8.0
    assert backoff(10, 1.0, 60.0, rand=lambda: 1.0) == 60.0
    assert backoff(10_000, 1.0, 60.0, rand=lambda: 1.0) == 60.0
    assert backoff(4, 1.0, 60.0, rand=lambda: 0.0) == 4.0
    spread = {round(backoff(3, 1.0, 60.0), 6) for _ in range(50)}
    assert len(spread) > 1 and all(2.0 <= d <= 4.0 for d in spread)


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="webhook_secret"):
        Settings(webhook_url="http://cad.example/hook", webhook_secret="")
    assert WebhookConfig.from_settings(Settings(webhook_url="")) is None
    cfg = WebhookConfig.from_settings(Settings(webhook_url="http://cad.example/hook",
                                               webhook_secret="s", webhook_backoff_cap=9))
    assert cfg is not None and cfg.backoff_cap == 9 and cfg.url == "http://cad.example/hook"
