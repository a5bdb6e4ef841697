"""Preflight checks for the Mini Apps: the build is there and the admin Mini App can let someone in."""

from __future__ import annotations

from adapters.preflight import Check, Level, PreflightInputs


async def miniapp_checks(inputs: PreflightInputs) -> list[Check]:
    settings = inputs.settings
    checks: list[Check] = []
    dist = settings.webapp_dist
    built = (dist / "index.html").is_file() and (dist / "admin" / "index.html").is_file()
    checks.append(
        Check("webapp_build", Level.ok, "user and admin Mini Apps built")
        if built
        else Check(
            "webapp_build",
            Level.warning,
            "no Mini App build in WEBAPP_DIST_PATH: /app shows «build required» (make webapp)",
        )
    )
    can_verify = bool(settings.telegram_bot_token and settings.telegram_bot_token.get_secret_value()) or bool(
        settings.webapp_bot_id
    )
    if not can_verify:
        detail = "neither TELEGRAM_BOT_TOKEN nor WEBAPP_BOT_ID: Mini App initData can't be verified"
        checks.append(Check("webapp_initdata", Level.warning, detail))
    if settings.admin_miniapp_enabled and not settings.admin_telegram_ids:
        detail = "ADMIN_MINIAPP_ENABLED without ADMIN_TELEGRAM_IDS: nobody can use it"
        checks.append(Check("admin_miniapp", Level.warning, detail))
    for name, url in (("USER_WEBAPP_URL", settings.user_webapp_url), ("ADMIN_WEBAPP_URL", settings.admin_webapp_url)):
        if url and not url.startswith("https://"):
            detail = f"{name} is not https: Telegram opens Mini Apps over https only"
            checks.append(Check("webapp_url", Level.warning, detail))
    return checks
