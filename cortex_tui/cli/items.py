"""The item readers under their former name (they moved to ``cortex_tui.items``)."""

from __future__ import annotations

from cortex_tui.items import parse_config as parse_config
from cortex_tui.items import read_items as read_items
from cortex_tui.items import read_jsonl as read_jsonl
