"""`llmroute demo`: replay the routerbench test prompts through a real gateway and show the savings.

`config` builds the in-memory Settings (replay provider, the 11 routerbench models priced from their
recorded costs), `traffic` sends the prompts with the official `openai` SDK and posts feedback,
`summary` reads the ledger back into the printed summary, `run` ties them together around uvicorn.
"""

from __future__ import annotations

from .run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
