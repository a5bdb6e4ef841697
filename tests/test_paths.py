from __future__ import annotations

from pathlib import Path

from agent.paths import resolve_data_paths
from tests.conftest import make_settings


def _paths(tmp_path: Path, var_data: Path | None = None, **overrides: object):
    settings = make_settings(tmp_path, **{"persistent_data_path": None, **overrides})
    return resolve_data_paths(settings, var_data=var_data or tmp_path / "absent")


def test_persistent_data_path_wins(tmp_path: Path) -> None:
    paths = _paths(tmp_path, persistent_data_path=str(tmp_path / "p"), render_disk_mount_path=str(tmp_path / "r"))
    assert paths.root == tmp_path / "p"
    assert paths.database_path == tmp_path / "p" / "sales_agent.db"
    assert paths.vector_store_meta_path == tmp_path / "p" / "vector_store.json"
    assert paths.database_on_persistent_storage


def test_render_disk_mount_path_next(tmp_path: Path) -> None:
    assert _paths(tmp_path, render_disk_mount_path=str(tmp_path / "r")).root == tmp_path / "r"


def test_var_data_when_writable(tmp_path: Path) -> None:
    var_data = tmp_path / "var-data"
    var_data.mkdir()
    assert _paths(tmp_path, var_data=var_data).root == var_data


def test_tmp_on_render_without_disk(tmp_path: Path) -> None:
    paths = _paths(tmp_path, render="true")
    assert paths.root == Path("/tmp")
    assert not paths.database_on_persistent_storage
    assert not paths.vector_meta_on_persistent_storage


def test_local_default_is_data(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert paths.root == Path("data").absolute()
    assert paths.root_source == "local_default"


def test_database_path_outside_root_is_reported(tmp_path: Path) -> None:
    paths = _paths(
        tmp_path,
        persistent_data_path=str(tmp_path / "p"),
        database_path=str(tmp_path / "elsewhere" / "db.sqlite"),
        vector_store_meta_path=str(tmp_path / "p" / "meta.json"),
    )
    assert not paths.database_on_persistent_storage
    assert paths.vector_meta_on_persistent_storage
