"""Which knowledge backend the service uses: the OpenAI vector store when configured, else the local index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from adapters.knowledge.documents import KnowledgeDocument
from adapters.knowledge.local import LocalKnowledge
from adapters.knowledge.vector_store import UsageRecorder, VectorStoreKnowledge
from agent.ports import KnowledgeResult
from agent.settings import Settings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

# The search sits inside a user's turn: fail fast and let the local index answer.
VECTOR_SEARCH_TIMEOUT_SECONDS = 10.0


class KnowledgeBackend(Protocol):
    """agent.ports.Knowledge plus the document texts (guardrails, admin tools)."""

    name: str

    async def search(self, brand: str, query: str, *, limit: int = 3) -> KnowledgeResult: ...

    def documents(self, brand: str) -> list[KnowledgeDocument]: ...

    def document(self, brand: str, slug: str) -> KnowledgeDocument | None: ...

    def known_amounts(self, brand: str) -> set[int]: ...

    def brands(self) -> list[str]: ...

    async def prepare(self) -> None:
        """Build what a search needs now rather than at the first search (the warm-up after start-up)."""
        ...


def openai_client(settings: Settings, *, timeout: float | None = None, max_retries: int | None = None) -> AsyncOpenAI:
    if settings.openai_api_key is None:
        raise ValueError("OPENAI_API_KEY is not set")
    from openai import AsyncOpenAI  # only with a key: the SDK is a slow import (see agent/llm_types.py)

    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=timeout if timeout is not None else settings.openai_timeout_seconds,
        max_retries=max_retries if max_retries is not None else settings.openai_max_retries,
    )


def build_knowledge(
    settings: Settings, llm_client: AsyncOpenAI | None, usage_recorder: UsageRecorder | None = None
) -> KnowledgeBackend:
    """The vector store when OPENAI_VECTOR_STORE_ID is set and there is a model client (the one the
    composition root built for the model: the search uses a copy with its own timeout and one retry,
    sharing its connections); else the local index."""
    local = LocalKnowledge.from_directory(settings.knowledge_path)
    if not settings.openai_vector_store_id or llm_client is None:
        return local
    client = llm_client.with_options(
        timeout=min(settings.openai_timeout_seconds, VECTOR_SEARCH_TIMEOUT_SECONDS), max_retries=1
    )
    return VectorStoreKnowledge(client, settings.openai_vector_store_id, local, usage_recorder=usage_recorder)
