"""The receivers' verification helper with a forged header: a refusal, never an exception."""

from __future__ import annotations

from bot.services.webhooks import signature, verify

SECRET = "dms-secret-0123456789abcdef"


def test_a_forged_signature_with_any_characters_is_refused_not_raised() -> None:
    body = b'{"event":"case.opened"}'
    assert verify(SECRET, body, signature(SECRET, body))
    for forged in ("sha256=é", "sha256=" + "ą" * 64, "", "sha256=\x00", signature(SECRET, body).upper()):
        assert verify(SECRET, body, forged) is False
