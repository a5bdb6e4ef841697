"""Online SQLite backup and verified restore (scripts/backup_sqlite.py, scripts/restore_sqlite.py).

The backup uses SQLite's backup API, so it is a consistent snapshot even while the service keeps
writing in WAL mode; restore verifies the backup before it touches the live database.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
REQUIRED_TABLES = {"alembic_version", "users", "conversations", "messages", "leads"}


class BackupError(Exception):
    pass


def _timestamp() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def integrity_problems(path: Path) -> list[str]:
    """Empty when the file is a healthy database of this service."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return [f"cannot open: {error}"]
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        return [f"not a database: {error}"]
    finally:
        conn.close()
    problems = [] if result == ["ok"] else [f"integrity_check: {'; '.join(result[:5])}"]
    missing = REQUIRED_TABLES - tables
    if missing:
        problems.append(f"missing tables: {', '.join(sorted(missing))}")
    return problems


def copy_online(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)  # in steps, so writers are never blocked for long
    finally:
        dst.close()
        src.close()


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    pruned: list[Path]


def backup(db_path: Path, output_dir: Path, prefix: str, keep_last: int) -> BackupResult:
    if not db_path.is_file():
        raise BackupError(f"database {db_path} does not exist")
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".backup-") as work:
        snapshot = Path(work) / "snapshot.db"
        copy_online(db_path, snapshot)
        problems = integrity_problems(snapshot)
        if problems:
            raise BackupError(f"the copy failed verification: {'; '.join(problems)}")
        final = output_dir / f"{prefix}-{_timestamp()}.db.gz"
        partial = Path(work) / final.name
        with snapshot.open("rb") as raw, gzip.open(partial, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(raw, packed)
        os.replace(partial, final)  # a half-written archive never carries the final name
    return BackupResult(final, final.stat().st_size, prune(output_dir, prefix, keep_last))


def prune(output_dir: Path, prefix: str, keep_last: int) -> list[Path]:
    backups = sorted(output_dir.glob(f"{prefix}-*.db.gz"), key=lambda p: p.name, reverse=True)
    doomed = backups[keep_last:] if keep_last > 0 else []
    for path in doomed:
        path.unlink()
    return doomed


@dataclass(frozen=True)
class RestoreResult:
    db_path: Path
    previous: Path | None


def restore(backup_path: Path, db_path: Path, *, force: bool) -> RestoreResult:
    if not backup_path.is_file():
        raise BackupError(f"backup {backup_path} does not exist")
    if db_path.exists() and not force:
        raise BackupError(f"{db_path} exists; pass --force to replace it (the current one is kept aside)")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged_name = tempfile.mkstemp(dir=db_path.parent, prefix=f".{db_path.name}.restore-")
    staged = Path(staged_name)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(backup_path, "rb") as packed:
            shutil.copyfileobj(packed, out)
        problems = integrity_problems(staged)
        if problems:
            raise BackupError(f"backup {backup_path.name} failed verification: {'; '.join(problems)}")
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        staged.unlink(missing_ok=True)
        raise BackupError(f"backup {backup_path.name} is not a readable gzip file: {error}") from None
    except BackupError:
        staged.unlink(missing_ok=True)
        raise
    previous = None
    if db_path.exists():
        # Copy through the backup API so what sits in the -wal file is kept too.
        previous = db_path.with_name(f"{db_path.name}.before-restore-{_timestamp()}")
        copy_online(db_path, previous)
    for suffix in ("-wal", "-shm"):
        # The old WAL belongs to the old file; replayed onto the restored one it would corrupt it.
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.replace(staged, db_path)
    return RestoreResult(db_path, previous)
