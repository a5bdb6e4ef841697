"""initData validation against public vectors of other implementations, with an injected clock.

Vectors: aiogram tests/test_utils/test_web_app.py (token 42:TEST) and Telegram-Mini-Apps/init-data-golang
validate_test.go / validate_third_party_test.go.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapters.http.initdata import (
    InitDataError,
    InitDataExpired,
    verify_with_bot_token,
    verify_with_signature,
)
from tests.webapp_helpers import sign_init_data

DAY = 86400

AIOGRAM_VALID = (
    "auth_date=1650385342"
    "&user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D"
    "&query_id=test"
    "&hash=46d2ea5e32911ec8d30999b56247654460c0d20949b6277af519e76271182803"
)
AIOGRAM_VALID_PLUS_ENCODED = (
    "auth_date=1650385342"
    "&user=%7B%22id%22%3A+%22123456789%22%2C+%22first_name%22%3A+%22PlaceholderFirstName%22%2C+"
    "%22last_name%22%3A+%22PlaceholderLastName+%5Cud83c%5Cuddfa%5Cud83c%5Cudde6%22%2C+%22username%22%3A+"
    "%22Latand%22%2C+%22language_code%22%3A+%22en%22%2C+%22is_premium%22%3A+%22true%22%2C+"
    "%22allows_write_to_pm%22%3A+%22true%22%7D"
    "&query_id=test"
    "&hash=b3c8b293f14ad0f7f0abcf769aea1209a72295d30a87eb0e74df855d32e53bfe"
)
AIOGRAM_AUTH_DATE = datetime.fromtimestamp(1650385342, UTC)

GOLANG_TOKEN = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
GOLANG_VALID = (
    "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22"
    "%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22"
    "%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648"
    "&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
)
GOLANG_AUTH_DATE = datetime.fromtimestamp(1662771648, UTC)

THIRD_PARTY_BOT_ID = 7342037359
THIRD_PARTY_VALID = (
    "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C"
    "%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22"
    "%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F"
    "%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D"
    "&chat_instance=8134722200314281151&chat_type=private&auth_date=1733584787"
    "&hash=2174df5b000556d044f3f020384e879c8efcab55ddea2ced4eb752e93e7080d6"
    "&signature=zL-ucjNyREiHDE8aihFwpfR9aggP2xiAo3NSpfe-p7IbCisNlDKlo7Kb6G4D0Ao2mBrSgEk4maLSdv6MLIlADQ"
)
THIRD_PARTY_AUTH_DATE = datetime.fromtimestamp(1733584787, UTC)


def test_aiogram_vector_is_valid_and_parsed() -> None:
    data = verify_with_bot_token(AIOGRAM_VALID, "42:TEST", max_age_seconds=DAY, now=AIOGRAM_AUTH_DATE)
    assert data.user is not None and data.user.id == 42 and data.user.first_name == "Test"
    assert data.auth_date == AIOGRAM_AUTH_DATE
    assert data.fields["query_id"] == "test"


def test_aiogram_vector_with_plus_encoded_spaces_is_valid() -> None:
    data = verify_with_bot_token(
        AIOGRAM_VALID_PLUS_ENCODED, "42:TEST", max_age_seconds=DAY, now=AIOGRAM_AUTH_DATE + timedelta(hours=1)
    )
    assert data.user is not None and data.user.id == 123456789 and data.user.username == "Latand"
    assert data.user.last_name is not None and data.user.last_name.startswith("PlaceholderLastName ")


@pytest.mark.parametrize(
    ("token", "raw"),
    [
        ("42:INVALID", AIOGRAM_VALID),
        ("42:TEST", "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test&hash=test"),
        ("42:TEST", "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test"),
        ("42:TEST", ""),
        ("42:TEST", "test&foo=bar=baz"),
        # A non-ASCII hash is simply invalid, never an exception of another kind.
        ("42:TEST", "user=%7B%22id%22%3A42%2C%22first_name%22%3A%22Test%22%7D&query_id=test&hash=%C3%A9%C3%A9%C3%A9"),
        ("42:TEST", AIOGRAM_VALID + "&hash=" + "0" * 64),  # a repeated field
        ("42:TEST", AIOGRAM_VALID.replace("query_id=test", "query_id=tesT")),
    ],
)
def test_aiogram_invalid_vectors(token: str, raw: str) -> None:
    with pytest.raises(InitDataError) as caught:
        verify_with_bot_token(raw, token, max_age_seconds=DAY, now=AIOGRAM_AUTH_DATE)
    assert caught.value.reason == "invalid_init_data"


def test_golang_vector_valid_within_age_and_without_age_check() -> None:
    fresh = verify_with_bot_token(GOLANG_VALID, GOLANG_TOKEN, max_age_seconds=DAY, now=GOLANG_AUTH_DATE + timedelta(minutes=5))
    assert fresh.user is not None and fresh.user.id == 279058397 and fresh.user.is_premium
    # 0 disables the age check: years later it still verifies.
    later = verify_with_bot_token(GOLANG_VALID, GOLANG_TOKEN, max_age_seconds=0, now=datetime.now(UTC))
    assert later.user is not None and later.user.username == "vdkfrost"


def test_golang_vector_expired() -> None:
    with pytest.raises(InitDataExpired) as caught:
        verify_with_bot_token(GOLANG_VALID, GOLANG_TOKEN, max_age_seconds=1, now=GOLANG_AUTH_DATE + timedelta(seconds=2))
    assert caught.value.reason == "expired"


@pytest.mark.parametrize(
    "raw",
    ["here comes something wrong;", "no_hash=true", "hash=abc", "hash=abc&auth_date=1662771917",
     GOLANG_VALID + "abc", "hash=abc&auth_date=test"],
)
def test_golang_invalid_vectors(raw: str) -> None:
    with pytest.raises(InitDataError) as caught:
        verify_with_bot_token(raw, GOLANG_TOKEN, max_age_seconds=1, now=GOLANG_AUTH_DATE)
    assert caught.value.reason == "invalid_init_data"


def test_third_party_vector_valid() -> None:
    data = verify_with_signature(
        THIRD_PARTY_VALID, THIRD_PARTY_BOT_ID, max_age_seconds=DAY, now=THIRD_PARTY_AUTH_DATE + timedelta(hours=2)
    )
    assert data.user is not None and data.user.first_name == "Vladislav + - ? /"
    assert data.fields["chat_type"] == "private"


def test_third_party_vector_expired() -> None:
    with pytest.raises(InitDataExpired):
        verify_with_signature(
            THIRD_PARTY_VALID, THIRD_PARTY_BOT_ID, max_age_seconds=1, now=THIRD_PARTY_AUTH_DATE + timedelta(seconds=5)
        )


@pytest.mark.parametrize(
    ("raw", "bot_id"),
    [
        ("here comes something wrong;", 1),
        ("no_signature=true", 1),
        ("signature=abc", 1),
        (THIRD_PARTY_VALID + "a", 1),
        (THIRD_PARTY_VALID, THIRD_PARTY_BOT_ID + 1),  # signed for another bot
        (THIRD_PARTY_VALID.replace("chat_type=private", "chat_type=group"), THIRD_PARTY_BOT_ID),
        (THIRD_PARTY_VALID.replace("signature=zL", "signature=%C3%A9"), THIRD_PARTY_BOT_ID),
    ],
)
def test_third_party_invalid_vectors(raw: str, bot_id: int) -> None:
    with pytest.raises(InitDataError) as caught:
        verify_with_signature(raw, bot_id, max_age_seconds=0, now=THIRD_PARTY_AUTH_DATE)
    assert caught.value.reason == "invalid_init_data"


def test_signature_message_layout_with_own_key() -> None:
    """Sign with a key we hold, so the message layout (bot id line, hash left out) is checked too."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    fields = {"auth_date": str(int(now.timestamp())), "user": '{"id":7,"first_name":"Аня"}', "hash": "ignored"}
    message = f"99:WebAppData\nauth_date={fields['auth_date']}\nuser={fields['user']}"
    signature = base64.urlsafe_b64encode(private.sign(message.encode())).decode().rstrip("=")
    raw = urlencode({**fields, "signature": signature})
    data = verify_with_signature(raw, 99, max_age_seconds=DAY, now=now, public_key=public)
    assert data.user is not None and data.user.first_name == "Аня"


def test_own_hmac_signing_round_trip_with_cyrillic() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    raw = sign_init_data("123:ABC", user={"id": 5, "first_name": "Мария", "username": "maria"}, auth_date=now)
    data = verify_with_bot_token(raw, "123:ABC", max_age_seconds=DAY, now=now)
    assert data.user is not None and data.user.first_name == "Мария"
    with pytest.raises(InitDataError):
        verify_with_bot_token(raw, "123:ABD", max_age_seconds=DAY, now=now)
