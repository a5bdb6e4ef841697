"""GET /api/auth/whoami: who the Mini App runs for, or why it can't tell."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.http.dependencies import SettingsDep
from adapters.http.miniapp_auth import OptionalInitDataDep, is_miniapp_admin

router = APIRouter(tags=["mini app"])


@router.get("/api/auth/whoami")
async def whoami(data: OptionalInitDataDep, settings: SettingsDep) -> dict[str, object]:
    """200 not_in_telegram without initData; 401 invalid_init_data / expired for a bad one."""
    if data is None or data.user is None:
        return {"ok": False, "reason": "not_in_telegram"}
    return {
        "ok": True,
        "user": data.user.public(),
        "is_admin": is_miniapp_admin(data, settings),
        "start_param": data.start_param,
    }
