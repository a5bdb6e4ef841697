"""Where persistent data lives, exactly as the deployment runbook describes.

Order: PERSISTENT_DATA_PATH, RENDER_DISK_MOUNT_PATH, /var/data when it exists and is writable,
/tmp when running on Render (the free plan has no disk), else ./data for local runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent.settings import Settings

RENDER_DEFAULT_MOUNT = Path("/var/data")


@dataclass(frozen=True)
class DataPaths:
    root: Path
    root_source: str  # which rule chose the root, for diagnostics
    database_path: Path
    vector_store_meta_path: Path

    @property
    def root_is_tmp(self) -> bool:
        # The runbook's fallback for Render without a disk; wiped on every deploy.
        return self.root.resolve() == Path("/tmp").resolve()

    @property
    def database_on_persistent_storage(self) -> bool:
        return _is_within(self.database_path, self.root) and not self.root_is_tmp

    @property
    def vector_meta_on_persistent_storage(self) -> bool:
        return _is_within(self.vector_store_meta_path, self.root) and not self.root_is_tmp


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


def resolve_data_paths(settings: Settings, *, var_data: Path = RENDER_DEFAULT_MOUNT) -> DataPaths:
    if settings.persistent_data_path:
        root, source = Path(settings.persistent_data_path), "PERSISTENT_DATA_PATH"
    elif settings.render_disk_mount_path:
        root, source = Path(settings.render_disk_mount_path), "RENDER_DISK_MOUNT_PATH"
    elif _writable_dir(var_data):
        root, source = var_data, str(var_data)
    elif settings.running_on_render:
        root, source = Path("/tmp"), "render_without_disk"
    else:
        root, source = Path("data").absolute(), "local_default"
    database_path = Path(settings.database_path) if settings.database_path else root / "sales_agent.db"
    meta_path = (
        Path(settings.vector_store_meta_path)
        if settings.vector_store_meta_path
        else root / "vector_store.json"
    )
    return DataPaths(root, source, database_path, meta_path)
