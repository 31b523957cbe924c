"""How `--help` shows options: a flag shows its switches (`--access-log/--no-access-log`), never
a value type (`<bool>`) it does not take."""

from __future__ import annotations

from typer import _click
from typer.core import TyperOption

_shown_type = TyperOption.display_type_rich


def _display_type(self: TyperOption, ctx: _click.Context) -> str | None:
    """No type for a flag (it takes no value); the usual `<int>`, `<path>`… for the rest."""
    if self.is_flag:
        return None
    return _shown_type(self, ctx)


def plain_flags() -> None:
    """Show flags without a value type in every command's help (idempotent)."""
    TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]
