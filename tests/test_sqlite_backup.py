"""backup_sqlite.py / restore_sqlite.py: consistent online copies, verified restores, clear refusals."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from adapters.storage.migrate import upgrade
from adapters.storage.sqlite_backup import BackupError, backup, integrity_problems, restore
from tests.conftest import REPO


def _migrated_db(path: Path) -> Path:
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _insert_users(db: Path, start: int, count: int, committed: list[int], started: threading.Event) -> None:
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    for i in range(start, start + count):
        conn.execute(
            "INSERT INTO users (identity, external_id, created_at) VALUES ('api', ?, '2026-11-27 00:00:00')", (str(i),)
        )
        conn.commit()
        committed.append(i)
        if i == start + 50:
            started.set()
    conn.close()


def _user_ids(db: Path) -> set[int]:
    conn = sqlite3.connect(db)
    try:
        return {int(row[0]) for row in conn.execute("SELECT external_id FROM users")}
    finally:
        conn.close()


def test_backup_during_1000_writes_restores_every_committed_row(tmp_path: Path) -> None:
    db = _migrated_db(tmp_path / "live.db")
    committed: list[int] = []
    started = threading.Event()
    writer = threading.Thread(target=_insert_users, args=(db, 0, 1000, committed, started))
    writer.start()
    started.wait(10)
    committed_before = set(committed)
    result = backup(db, tmp_path / "backups", "t", keep_last=5)
    writer.join(60)
    assert len(committed) == 1000

    restored = tmp_path / "restored.db"
    restore(result.path, restored, force=False)
    assert integrity_problems(restored) == []
    rows = _user_ids(restored)
    assert committed_before <= rows  # everything committed before the backup began is there
    assert rows == set(range(len(rows)))  # and it is a consistent prefix: no gaps, no torn writes
    assert _user_ids(db) == set(range(1000))


def test_prune_keeps_newest(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        (out / f"p-{stamp}.db.gz").write_bytes(b"")
    db = _migrated_db(tmp_path / "x.db")
    result = backup(db, out, "p", keep_last=2)
    names = sorted(p.name for p in out.glob("p-*.db.gz"))
    assert len(names) == 2 and result.path.name in names
    assert {p.name for p in result.pruned} == {"p-20260101T000000Z.db.gz", "p-20260102T000000Z.db.gz"}


def test_restore_refuses_overwrite_without_force_and_keeps_previous(tmp_path: Path) -> None:
    db = _migrated_db(tmp_path / "x.db")
    archive = backup(db, tmp_path / "b", "p", keep_last=3).path
    with pytest.raises(BackupError, match="--force"):
        restore(archive, db, force=False)
    Path(f"{db}-wal").write_bytes(b"stale")
    result = restore(archive, db, force=True)
    assert result.previous is not None and integrity_problems(result.previous) == []
    assert not Path(f"{db}-wal").exists()
    assert integrity_problems(db) == []


def test_restore_verifies_before_touching_anything(tmp_path: Path) -> None:
    db = _migrated_db(tmp_path / "x.db")
    before = db.read_bytes()
    garbage = tmp_path / "bad.db.gz"
    with gzip.open(garbage, "wb") as f:
        f.write(b"this is not sqlite" * 100)
    with pytest.raises(BackupError, match="verification|not a"):
        restore(garbage, db, force=True)
    not_gzip = tmp_path / "plain.db.gz"
    not_gzip.write_bytes(b"nope")
    with pytest.raises(BackupError, match="gzip"):
        restore(not_gzip, db, force=True)
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if ".restore-" in p.name] == []


def _script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"scripts/{name}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )


def test_scripts_round_trip_and_refuse_postgres(tmp_path: Path) -> None:
    db = _migrated_db(tmp_path / "sales_agent.db")
    made = _script("backup_sqlite.py", "--db-path", str(db), "--output-dir", str(tmp_path / "b"),
                   "--prefix", "render-sales-agent", "--keep-last", "30")
    assert made.returncode == 0 and made.stdout.startswith("PASS"), made.stderr
    archive = next((tmp_path / "b").glob("render-sales-agent-*.db.gz"))
    refused = _script("restore_sqlite.py", "--backup-path", str(archive), "--db-path", str(db))
    assert refused.returncode == 1 and "--force" in refused.stderr
    forced = _script("restore_sqlite.py", "--backup-path", str(archive), "--db-path", str(db), "--force")
    assert forced.returncode == 0 and "before-restore" in forced.stdout
    pg = {"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/db"}
    for name, args in (("backup_sqlite.py", ["--db-path", str(db), "--output-dir", str(tmp_path)]),
                       ("restore_sqlite.py", ["--backup-path", str(archive), "--db-path", str(db)])):
        result = _script(name, *args, env=pg)
        assert result.returncode == 2 and "pg_dump" in result.stderr
        assert "u:p@" not in result.stderr + result.stdout
    missing = _script("backup_sqlite.py", "--db-path", str(tmp_path / "none.db"), "--output-dir", str(tmp_path))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "--keep-last" in _script("backup_sqlite.py", "--help").stdout
