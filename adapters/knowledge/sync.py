"""Keep an OpenAI vector store in step with knowledge/<brand>/*.md (scripts/sync_vector_store.py).

The store itself is the source of truth: every uploaded file carries the attributes
{brand, slug, key, sha256}, so a lost metadata file (Render without a disk) costs nothing. The metadata
JSON at VECTOR_STORE_META_PATH records the store id and file hashes for --dry-run and for operators.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from openai import AsyncOpenAI, NotFoundError

from adapters.knowledge.documents import brand_folders

STORE_NAME = "sales-assistant-knowledge"
POLL_INTERVAL_MS = 500
POLL_MAX_SECONDS = 300.0  # per file; the SDK would otherwise wait forever

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocalFile:
    brand: str
    slug: str
    path: Path
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.brand}/{self.slug}.md"

    @property
    def upload_name(self) -> str:
        return f"{self.brand}--{self.slug}.md"


@dataclass(frozen=True)
class RemoteFile:
    key: str
    file_id: str
    sha256: str


@dataclass
class SyncPlan:
    upload: list[LocalFile] = field(default_factory=list)  # new or changed
    remove: list[RemoteFile] = field(default_factory=list)  # deleted locally, or an old version
    unchanged: list[LocalFile] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.upload) + len(self.remove)


@dataclass
class SyncResult:
    vector_store_id: str
    created_store: bool
    plan: SyncPlan


def local_files(knowledge_root: Path) -> list[LocalFile]:
    files = []
    for brand in brand_folders(knowledge_root):
        for path in sorted((knowledge_root / brand).glob("*.md")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append(LocalFile(brand, path.stem, path, digest))
    return files


def make_plan(local: list[LocalFile], remote: dict[str, RemoteFile]) -> SyncPlan:
    plan = SyncPlan()
    local_keys = {file.key for file in local}
    for file in local:
        current = remote.get(file.key)
        if current is not None and current.sha256 == file.sha256:
            plan.unchanged.append(file)
            continue
        plan.upload.append(file)
        if current is not None:
            plan.remove.append(current)
    plan.remove += [file for key, file in sorted(remote.items()) if key not in local_keys]
    return plan


def read_meta(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def meta_remote_files(meta: dict[str, object]) -> dict[str, RemoteFile]:
    files = meta.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        key: RemoteFile(key, str(entry.get("file_id", "")), str(entry.get("sha256", "")))
        for key, entry in files.items()
        if isinstance(entry, dict)
    }


def write_meta(path: Path, vector_store_id: str, files: dict[str, RemoteFile]) -> None:
    """Written atomically: a crash mid-way never leaves half a JSON file."""
    payload = {
        "vector_store_id": vector_store_id,
        "synced_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {key: {"file_id": f.file_id, "sha256": f.sha256} for key, f in sorted(files.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(payload, tmp, ensure_ascii=False, indent=2)
    os.replace(tmp.name, path)


def dry_run_plan(knowledge_root: Path, meta_path: Path, vector_store_id: str | None) -> tuple[SyncPlan, str | None]:
    """What a sync would change, judged from the metadata file alone (no API call)."""
    meta = read_meta(meta_path)
    store_id = vector_store_id or (str(meta["vector_store_id"]) if meta.get("vector_store_id") else None)
    remote = meta_remote_files(meta) if store_id and meta.get("vector_store_id") == store_id else {}
    return make_plan(local_files(knowledge_root), remote), store_id


async def remote_files(client: AsyncOpenAI, vector_store_id: str) -> dict[str, RemoteFile]:
    files: dict[str, RemoteFile] = {}
    async for item in client.vector_stores.files.list(vector_store_id, limit=100):
        attributes = item.attributes or {}
        key, digest = attributes.get("key"), attributes.get("sha256")
        if isinstance(key, str) and isinstance(digest, str):  # files not uploaded by this script stay untouched
            files[key] = RemoteFile(key, item.id, digest)
    return files


async def _remove(client: AsyncOpenAI, vector_store_id: str, file: RemoteFile) -> None:
    try:
        await client.vector_stores.files.delete(file.file_id, vector_store_id=vector_store_id)
    except NotFoundError:
        pass  # already gone from the store
    try:
        await client.files.delete(file.file_id)
    except NotFoundError:
        pass


async def _upload(client: AsyncOpenAI, vector_store_id: str, file: LocalFile) -> RemoteFile:
    uploaded = await client.files.create(
        file=(file.upload_name, file.path.read_bytes(), "text/markdown"), purpose="assistants"
    )
    attached = await client.vector_stores.files.create_and_poll(
        uploaded.id,
        vector_store_id=vector_store_id,
        attributes={"brand": file.brand, "slug": file.slug, "key": file.key, "sha256": file.sha256},
        poll_interval_ms=POLL_INTERVAL_MS,
        max_wait_seconds=POLL_MAX_SECONDS,
    )
    if attached.status != "completed":
        reason = attached.last_error.message if attached.last_error else attached.status
        raise RuntimeError(f"{file.key}: the vector store could not ingest the file ({reason})")
    return RemoteFile(file.key, uploaded.id, file.sha256)


async def sync_vector_store(
    client: AsyncOpenAI,
    knowledge_root: Path,
    meta_path: Path,
    vector_store_id: str | None,
    progress: Progress = print,
) -> SyncResult:
    created = False
    meta = read_meta(meta_path)
    store_id = vector_store_id or (str(meta["vector_store_id"]) if meta.get("vector_store_id") else None)
    remote: dict[str, RemoteFile] = {}
    if store_id:
        try:
            remote = await remote_files(client, store_id)
        except NotFoundError:
            if vector_store_id:  # the operator named it: don't silently replace it
                raise
            progress(f"vector store {store_id} from {meta_path} no longer exists; creating a new one")
            store_id = None
    if store_id is None:
        store_id = (await client.vector_stores.create(name=STORE_NAME)).id
        created = True
        progress(f"created vector store {store_id}")
    plan = make_plan(local_files(knowledge_root), remote)
    state = dict(remote)
    total = plan.changes
    step = 0
    # Uploads first: a changed document is never missing from search while its old version goes.
    for local in plan.upload:
        step += 1
        progress(f"[{step}/{total}] upload {local.key}")
        state[local.key] = await _upload(client, store_id, local)
        write_meta(meta_path, store_id, state)
    for file in plan.remove:
        step += 1
        progress(f"[{step}/{total}] remove {file.key} ({file.file_id})")
        await _remove(client, store_id, file)
        if state.get(file.key) == file:
            del state[file.key]
        write_meta(meta_path, store_id, state)
    write_meta(meta_path, store_id, state)
    return SyncResult(store_id, created, plan)
