"""The webhook's pieces without a server: signing, backoff, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.outbound import WebhookConfig, backoff, body_of, sign, verify_signature
from service.settings import Settings

SECRET = "test-secret-shared-with-the-cad"


def test_signature_helper_accepts_only_the_exact_body_and_secret() -> None:
    body = body_of(42, '{"type":"decision","call_id":"c1"}')
    assert body == b'{"sequence":42,"type":"decision","call_id":"c1"}'
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
