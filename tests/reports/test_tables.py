"""`reports.tables`: the one layout every command's table goes through."""

from __future__ import annotations

from rich.console import Console

from llmroute.reports.tables import Layout, fit, widths_within

LAYOUT = Layout(("model", "cost", "message", "detail"), extra=("detail",), wrap=("message",))
ROWS = [{"model": "meta/code-llama-instruct-34b-chat", "cost": "$15,000.02",
         "message": "error rate 31% over the last 5 minutes (62 of 200 requests failed)",
         "detail": "a wide-only column with a long explanation of where this comes from"}]


def _lines(layout: Layout, wide: bool, width: int) -> list[str]:
    console = Console(width=1000 if wide else width, soft_wrap=True)
    with console.capture() as capture:
        console.print(fit(layout, None, ROWS, wide, width), crop=not wide)
    return capture.get().splitlines()


def test_the_default_view_fits_and_leaves_the_wide_column_out() -> None:
    lines = _lines(LAYOUT, False, 60)
    assert max(map(len, lines)) <= 60
    text = "\n".join(lines)
    assert "…" not in text and "$15,000.02" in text and "detail" not in text
    assert ROWS[0]["model"] in text  # the room left goes to the name first: whole
    narrower = _lines(LAYOUT, False, 40)
    assert max(map(len, narrower)) <= 40 and "…" not in "\n".join(narrower)
    # no room: the name folds onto more lines, every character kept
    assert ROWS[0]["model"] == "".join(row.split()[0] for row in narrower[3:] if row[1] != " ")


def test_wide_shows_every_column_on_one_line() -> None:
    lines = _lines(LAYOUT, True, 60)
    assert "detail" in lines[1] and any(ROWS[0]["message"] in line for line in lines)


def test_a_wide_only_column_shows_when_everything_fits_whole() -> None:
    assert LAYOUT.shown(ROWS, False, 400) == list(LAYOUT.columns)
    assert LAYOUT.shown(ROWS, False, 80) == ["model", "cost", "message"]


def test_room_goes_to_whole_headers_then_the_nearest_folding_column() -> None:
    header = ["model", "hit rate", "message"]
    columns = [["openai/gpt-4o-mini"], ["40.0%"], ["a message of forty characters, roughly.."]]
    # least: 12 + 5 + 12 (+ 4 spaces) = 33; 45 leaves 12: "hit rate" whole (3), the model (6)
    assert widths_within(header, columns, [True, False, True], 45) == [18, 8, 15]
