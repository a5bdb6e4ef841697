"""The Telegram adapter's fixtures (fake Bot API) for the security tests that go through the bot."""

from tests.telegram.conftest import fake_api  # noqa: F401  (a fixture, used by name)
