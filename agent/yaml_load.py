"""YAML for the content files (catalog, brand rules, intents, knowledge front matter).

libyaml's safe loader when PyYAML has it (its wheels do): the same data as ``yaml.safe_load``, ~9x
faster (the 32 KB catalog in 4 ms, not 39 ms), and start-up reads every content file at least once.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
