"""scripts/sync_vector_store.py: the real openai SDK against a stateful fake of the vector store API (respx)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
import respx
from openai import AsyncOpenAI, NotFoundError

from adapters.knowledge.sync import dry_run_plan, sync_vector_store
from tests.conftest import REPO, run_script
from tests.respx_openai import OPENAI_MOCKER

V1 = "/v1"  # the path of the SDK's default base URL


class FakeVectorStoreApi:
    """Just enough of /files and /vector_stores to hold state across calls."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.stores: dict[str, dict[str, dict[str, object]]] = {}
        self.uploads: dict[str, str] = {}  # file id -> filename
        self.deleted_files: list[str] = []
        self._ids = itertools.count(1)
        router.post(path__regex=rf"{V1}/vector_stores$").mock(side_effect=self.create_store)
        router.get(path__regex=rf"{V1}/vector_stores/(?P<store>[^/]+)/files$").mock(side_effect=self.list_files)
        router.post(path__regex=rf"{V1}/vector_stores/(?P<store>[^/]+)/files$").mock(side_effect=self.attach)
        router.get(path__regex=rf"{V1}/vector_stores/(?P<store>[^/]+)/files/(?P<file>[^/]+)$").mock(
            side_effect=self.retrieve
        )
        router.delete(path__regex=rf"{V1}/vector_stores/(?P<store>[^/]+)/files/(?P<file>[^/]+)$").mock(
            side_effect=self.detach
        )
        router.post(path__regex=rf"{V1}/files$").mock(side_effect=self.upload)
        router.delete(path__regex=rf"{V1}/files/(?P<file>[^/]+)$").mock(side_effect=self.delete_file)

    def _store_file(self, store: str, file_id: str, status: str = "completed") -> dict[str, object]:
        entry = self.stores[store][file_id]
        return {
            "id": file_id,
            "object": "vector_store.file",
            "created_at": 1,
            "usage_bytes": 10,
            "vector_store_id": store,
            "status": status,
            "last_error": None,
            "attributes": entry["attributes"],
        }

    def create_store(self, request: httpx.Request) -> httpx.Response:
        store = f"vs_fake{next(self._ids)}"
        self.stores[store] = {}
        counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
        return httpx.Response(
            200,
            json={
                "id": store, "object": "vector_store", "created_at": 1, "name": json.loads(request.content)["name"],
                "usage_bytes": 0, "file_counts": counts, "status": "completed", "last_active_at": 1, "metadata": {},
            },
        )

    def _missing(self) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "No vector store found", "type": "invalid_request_error"}})

    def list_files(self, request: httpx.Request, store: str) -> httpx.Response:
        if store not in self.stores:
            return self._missing()
        data = [self._store_file(store, file_id) for file_id in self.stores[store]]
        return httpx.Response(200, json={"object": "list", "data": data, "first_id": None, "last_id": None, "has_more": False})

    def upload(self, request: httpx.Request) -> httpx.Response:
        filename = re.search(rb'filename="([^"]+)"', request.content).group(1).decode()  # type: ignore[union-attr]
        file_id = f"file-{next(self._ids)}"
        self.uploads[file_id] = filename
        return httpx.Response(
            200,
            json={"id": file_id, "object": "file", "bytes": len(request.content), "created_at": 1,
                  "filename": filename, "purpose": "assistants", "status": "processed"},
        )

    def attach(self, request: httpx.Request, store: str) -> httpx.Response:
        body = json.loads(request.content)
        self.stores[store][body["file_id"]] = {"attributes": body["attributes"]}
        return httpx.Response(200, json=self._store_file(store, body["file_id"], status="in_progress"))

    def retrieve(self, request: httpx.Request, store: str, file: str) -> httpx.Response:
        return httpx.Response(200, json=self._store_file(store, file))

    def detach(self, request: httpx.Request, store: str, file: str) -> httpx.Response:
        self.stores[store].pop(file, None)
        return httpx.Response(200, json={"id": file, "object": "vector_store.file.deleted", "deleted": True})

    def delete_file(self, request: httpx.Request, file: str) -> httpx.Response:
        self.deleted_files.append(file)
        return httpx.Response(200, json={"id": file, "object": "file", "deleted": True})

    def keys(self, store: str) -> dict[str, str]:
        return {str(e["attributes"]["key"]): str(e["attributes"]["sha256"]) for e in self.stores[store].values()}


@pytest.fixture
def api() -> FakeVectorStoreApi:
    with respx.mock(using=OPENAI_MOCKER, assert_all_called=False) as router:
        yield FakeVectorStoreApi(router)


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(REPO / "tests" / "data" / "knowledge", root)
    return root


def client() -> AsyncOpenAI:
    return AsyncOpenAI(api_key="sk-test", max_retries=0, timeout=5)


async def test_first_sync_creates_a_store_and_uploads_everything(
    api: FakeVectorStoreApi, knowledge: Path, tmp_path: Path
) -> None:
    meta = tmp_path / "data" / "vector_store.json"
    lines: list[str] = []
    result = await sync_vector_store(client(), knowledge, meta, None, progress=lines.append)
    assert result.created_store and result.vector_store_id in api.stores
    assert set(api.keys(result.vector_store_id)) == {"demo/addresses.md", "demo/payment.md", "demo/trial-lesson.md"}
    assert sorted(api.uploads.values()) == ["demo--addresses.md", "demo--payment.md", "demo--trial-lesson.md"]
    assert lines[0] == f"created vector store {result.vector_store_id}"
    assert "[3/3] upload demo/trial-lesson.md" in lines
    written = json.loads(meta.read_text(encoding="utf-8"))
    assert written["vector_store_id"] == result.vector_store_id
    assert set(written["files"]) == set(api.keys(result.vector_store_id))


async def test_second_sync_changes_only_what_changed(api: FakeVectorStoreApi, knowledge: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.json"
    first = await sync_vector_store(client(), knowledge, meta, None, progress=lambda _: None)
    store = first.vector_store_id
    old_payment = next(f for f, e in api.stores[store].items() if e["attributes"]["slug"] == "payment")
    (knowledge / "demo" / "payment.md").write_text(
        (knowledge / "demo" / "payment.md").read_text(encoding="utf-8") + "\nНовая строка.\n", encoding="utf-8"
    )
    (knowledge / "demo" / "addresses.md").unlink()
    (knowledge / "demo" / "new-topic.md").write_text("---\ntitle: Новое\nsources: [https://demo-school.ru/]\n---\nТекст\n")

    # The metadata file is lost (Render without a disk): the store's own attributes still tell the state.
    meta.unlink()
    second = await sync_vector_store(client(), knowledge, meta, store, progress=lambda _: None)
    assert not second.created_store and second.vector_store_id == store
    assert sorted(f.key for f in second.plan.upload) == ["demo/new-topic.md", "demo/payment.md"]
    assert sorted(f.key for f in second.plan.remove) == ["demo/addresses.md", "demo/payment.md"]
    assert [f.key for f in second.plan.unchanged] == ["demo/trial-lesson.md"]
    assert set(api.keys(store)) == {"demo/new-topic.md", "demo/payment.md", "demo/trial-lesson.md"}
    assert old_payment in api.deleted_files and old_payment not in api.stores[store]
    assert set(json.loads(meta.read_text(encoding="utf-8"))["files"]) == set(api.keys(store))

    third = await sync_vector_store(client(), knowledge, meta, store, progress=lambda _: None)
    assert third.plan.changes == 0


async def test_a_vanished_store_from_metadata_is_recreated(api: FakeVectorStoreApi, knowledge: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"vector_store_id": "vs_gone", "files": {}}))
    result = await sync_vector_store(client(), knowledge, meta, None, progress=lambda _: None)
    assert result.created_store and result.vector_store_id != "vs_gone"
    with pytest.raises(NotFoundError):  # but a store the operator named is never silently replaced
        await sync_vector_store(client(), knowledge, meta, "vs_named_missing", progress=lambda _: None)


def test_dry_run_plans_from_metadata_only(knowledge: Path, tmp_path: Path) -> None:  # sync: runs its own loop
    meta = tmp_path / "meta.json"
    plan, store = dry_run_plan(knowledge, meta, None)
    assert store is None and len(plan.upload) == 3
    with respx.mock(using=OPENAI_MOCKER, assert_all_called=False) as router:
        api = FakeVectorStoreApi(router)
        asyncio.run(sync_vector_store(client(), knowledge, meta, None, progress=lambda _: None))
        calls = len(router.calls)
        plan, store = dry_run_plan(knowledge, meta, None)
        assert len(router.calls) == calls  # the dry run called nothing
    assert store in api.stores and plan.changes == 0 and len(plan.unchanged) == 3
    (knowledge / "demo" / "payment.md").unlink()
    plan, _ = dry_run_plan(knowledge, meta, None)
    assert [f.key for f in plan.remove] == ["demo/payment.md"]
    # Another store named in the environment: the metadata says nothing about it.
    assert len(dry_run_plan(knowledge, meta, "vs_other")[0].upload) == 2



def test_script_without_key_exits_2_but_dry_run_works(tmp_path: Path) -> None:
    env = {"PERSISTENT_DATA_PATH": str(tmp_path / "data"), "KNOWLEDGE_DIR": str(REPO / "tests" / "data" / "knowledge")}
    missing = run_script("sync_vector_store.py", **env)
    assert missing.returncode == 2 and "OPENAI_API_KEY is not set" in missing.stdout
    dry = run_script("sync_vector_store.py", "--dry-run", **env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "upload  demo/payment.md" in dry.stdout and "3 to upload, 0 to remove, 0 unchanged" in dry.stdout
    assert not (tmp_path / "data" / "vector_store.json").exists()


def test_script_reports_api_failure_with_exit_1(tmp_path: Path) -> None:
    env = {
        "PERSISTENT_DATA_PATH": str(tmp_path / "data"),
        "KNOWLEDGE_DIR": str(REPO / "tests" / "data" / "knowledge"),
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens on the discard port
        "OPENAI_MAX_RETRIES": "0",
    }
    failed = run_script("sync_vector_store.py", **env)
    assert failed.returncode == 1 and "Sync failed" in failed.stdout
    assert "sk-x" not in failed.stdout + failed.stderr
