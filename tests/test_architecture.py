"""The layers hold: no import cycles in agent/, tools/ and adapters/ (imports inside functions and
under TYPE_CHECKING count), no import pointing outward, and only entry points reach the runtime."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import cycles, import_graph, outward

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "tools", "adapters")
OUTWARD = {
    "agent": ("tools", "adapters"),
    "tools": ("adapters",),
    "adapters.storage": ("adapters.http", "adapters.telegram"),
}
# The composition root and the entry points that hold what it builds.
ENTRY_POINTS = {"adapters.wiring", "adapters.runtime", "adapters.main", "adapters.chat", "adapters.http.app"}


def test_no_import_cycles() -> None:
    found = cycles(import_graph(REPO, PACKAGES))
    assert not found, "import cycles (each line: the modules of one cycle): " + "; ".join(", ".join(c) for c in found)


def test_no_import_points_outward() -> None:
    found = outward(import_graph(REPO, PACKAGES), OUTWARD)
    assert not found, "imports pointing outward: " + "; ".join(found)


def test_only_entry_points_reach_the_runtime_and_the_composition_root() -> None:
    graph = import_graph(REPO, PACKAGES)
    reaching = {m for m, targets in graph.items() if targets & {"adapters.runtime", "adapters.wiring"}}
    assert reaching <= ENTRY_POINTS, sorted(reaching - ENTRY_POINTS)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_a_cycle_hidden_in_a_function_and_under_type_checking(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def thing():\n    from pkg import c\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n",
        "pkg/d.py": "from . import a\n",
    })
    graph = import_graph(tmp_path, ["pkg"])
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    _write(tmp_path, {"pkg/c.py": "x = 1\n"})
    assert cycles(import_graph(tmp_path, ["pkg"])) == []


def test_the_checker_finds_an_outward_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "agent/__init__.py": "",
        "agent/core.py": "def f():\n    import adapters.wiring\n",
        "adapters/__init__.py": "",
        "adapters/wiring.py": "import agent.core\n",
    })
    graph = import_graph(tmp_path, ["agent", "adapters"])
    assert outward(graph, OUTWARD) == ["agent.core -> adapters.wiring"]
    assert cycles(graph) == [["adapters.wiring", "agent.core"]]
