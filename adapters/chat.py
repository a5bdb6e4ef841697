"""`make chat`: a terminal chat with the same assistant service, for developers.

It uses the configured storage and model (offline policy without OPENAI_API_KEY). Type a message, a
button's number to press it, `/contact +7 999 123-45-67` to share a phone, `/manager` for a handoff,
`/start` to greet again, `/quit` to leave. Like adapters/main.py this is an entry point, so it may
reach the composition root (the core never does).
"""

from __future__ import annotations

import asyncio
import uuid

import typer
from rich.console import Console
from rich.panel import Panel

from adapters.wiring import build_runtime
from agent.errors import AgentError
from agent.settings import ConfigError, load_settings
from agent.types import Channel, Inbound, Reply, SharedContact

console = Console()
app = typer.Typer(add_completion=False)


def _show(reply: Reply) -> None:
    if reply.silent:
        console.print("[dim](бот молчит: разговор у менеджера)[/dim]")
        return
    console.print(Panel(reply.text, title=f"ассистент · {reply.engine}", border_style="cyan"))
    for card in reply.cards:
        console.print(f"  [bold]{card.title}[/bold] · {card.price_text} · {card.next_start_text}\n  {card.url}")
    for number, button in enumerate(reply.quick_replies, 1):
        console.print(f"  [{number}] {button.label}  [dim]{button.payload}[/dim]")
    if reply.actions:
        console.print(f"  [dim]actions: {', '.join(a.value for a in reply.actions)}[/dim]")


async def _chat(user_id: str, brand: str | None) -> None:
    runtime = build_runtime(load_settings())
    await runtime.db.migrate()
    try:
        base = Inbound(channel=Channel.telegram, user_id=user_id, brand=brand)
        _show(last := await runtime.assistant.handle(base.model_copy(update={"start": True})))
        while True:
            line = (await asyncio.to_thread(console.input, "[green]вы> [/green]")).strip()
            if line in {"/quit", "/exit"}:
                return
            inbound = base.model_copy(update={"idempotency_key": f"chat:{uuid.uuid4().hex}"})
            if line.isdigit() and 1 <= int(line) <= len(last.quick_replies):
                inbound = inbound.model_copy(update={"choice": last.quick_replies[int(line) - 1].payload})
            elif line.startswith("/contact "):
                phone = line.removeprefix("/contact ").strip()
                inbound = inbound.model_copy(update={"contact": SharedContact(phone=phone, verified=True)})
            elif line == "/manager":
                _show(last := await runtime.assistant.handoff(inbound, "запрос из терминального чата"))
                continue
            elif line == "/start":
                inbound = inbound.model_copy(update={"start": True})
            elif line:
                inbound = inbound.model_copy(update={"text": line})
            else:
                continue
            try:
                _show(last := await runtime.assistant.handle(inbound))
            except AgentError as error:
                console.print(f"[red]{error}[/red]")
    finally:
        await runtime.close()


@app.command()
def main(
    user_id: str = typer.Option("dev-1", help="Telegram user id to talk as"),
    brand: str | None = typer.Option(None, help="brand id (default BRAND_DEFAULT)"),
) -> None:
    """Chat with the assistant in the terminal."""
    try:
        asyncio.run(_chat(user_id, brand))
    except ConfigError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, EOFError):
        console.print()


if __name__ == "__main__":
    app()
