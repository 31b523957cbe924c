"""Tables that fit the terminal: every command's table is laid out here, so that at 80 columns none
is cut (`mo…`, `$0…`). The default view keeps the columns that fit the width, leaving out the
`--wide`-only ones first, then the layout's `drop_first` ones; numbers stay whole (each column at
least as wide as its widest cell), free-text columns wrap at words (a word longer than the column
folds onto the next line). `--wide` shows every column at its natural width.

Rows are mappings from a column's header to its cell text; a cell may hold several lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table

__all__ = ["LABEL_MIN", "Layout", "fit", "fitting", "grid", "line_width", "widths_within"]

#: The fewest characters a folded or wrapped column (a model's name, a message) keeps.
LABEL_MIN = 12


def line_width(text: str) -> int:
    """The widest line of a cell."""
    return max((len(line) for line in text.splitlines()), default=0)


def fitting(widths: Mapping[str, int], drop_first: Sequence[str], label: int,
            width: int | None) -> list[str]:
    """The columns of `widths` (each that many characters at least) that fit `width` terminal
    columns beside a label column of `label` characters, one space between columns and one at
    each edge: the `drop_first` ones left out in that order until they fit (all when `width` is
    None)."""
    kept = list(widths)
    for column in (*drop_first, None):
        total = label + sum(widths[c] for c in kept) + len(kept) + 2
        if width is None or total <= width or column is None:
            break
        if column in kept:
            kept.remove(column)
    return kept


def _least(header: str, cells: Sequence[str], folds: bool) -> int:
    """The fewest characters a column keeps: its widest cell and header word (a folding column:
    that, down to `LABEL_MIN`)."""
    widest = max([*map(line_width, cells), *map(len, header.split())])
    return min(widest, LABEL_MIN) if folds else widest


def widths_within(header: Sequence[str], columns: Sequence[Sequence[str]], folds: Sequence[bool],
                  width: int) -> list[int]:
    """Each column's width so that the table fits `width` terminal columns (one space between
    columns and at each edge) when their least widths do: every column at least its `_least`; the
    room left first lets whole headers of the other columns stand on one line, then widens the
    folding columns, the one nearest to its natural width first (a name whole rather than folded;
    a long text wraps either way)."""
    least = [_least(h, c, f) for h, c, f in zip(header, columns, folds, strict=True)]
    natural = [max([*map(line_width, c), len(h)]) for h, c in zip(header, columns, strict=True)]
    widths = list(least)
    room = width - sum(widths) - len(widths) - 1
    for i, fold in enumerate(folds):
        if not fold and 0 < natural[i] - widths[i] <= room:
            room -= natural[i] - widths[i]
            widths[i] = natural[i]
    for _, i in sorted((natural[i] - widths[i], i) for i, fold in enumerate(folds) if fold):
        grow = max(0, min(natural[i] - widths[i], room))
        widths[i] += grow
        room -= grow
    return widths


def grid(title: str | None, header: Sequence[str], rows: Sequence[Sequence[str]],
         left: Sequence[str], wide: bool, total: bool = False, wrap: Sequence[str] = (),
         width: int | None = None) -> Table:
    """A compact rich table: the first column and the `wrap` ones fold (down to `LABEL_MIN`; whole
    when `wide`), the others keep every cell whole (never `mo…`); laid out within `width` when
    given (`widths_within`); `left` columns (and the first) are left-justified; `total`: the last
    row is a total, set apart in bold."""
    out = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    folds = [i == 0 or column in wrap for i, column in enumerate(header)]
    cells = [[r[i] for r in rows] for i in range(len(header))]
    fixed = (widths_within(header, cells, folds, width) if width is not None and not wide
             else [None] * len(header))
    for i, column in enumerate(header):
        least = max([*map(line_width, cells[i]), len(column)]) if wide else _least(
            column, cells[i], folds[i])
        out.add_column(column, justify="left" if column in left or i == 0 else "right",
                       min_width=least, width=fixed[i], overflow="fold")
    for i, row in enumerate(rows):
        last = total and i == len(rows) - 1
        if last:
            out.add_section()
        out.add_row(*row, style="bold" if last else None)
    return out


@dataclass(frozen=True)
class Layout:
    """A table's columns: `columns` in order (the first is the row's label, always shown);
    `extra`: the `--wide`-only ones, in the order the default view leaves them out; `drop_first`:
    default columns to leave out next, in order, on a terminal narrower still; `wrap`: free-text
    columns that wrap; `left`: left-justified ones."""

    columns: tuple[str, ...]
    extra: tuple[str, ...] = ()
    drop_first: tuple[str, ...] = ()
    wrap: tuple[str, ...] = ()
    left: tuple[str, ...] = ()

    @property
    def default(self) -> tuple[str, ...]:
        """The columns the default view shows at 80 terminal columns (on ordinary data)."""
        return tuple(c for c in self.columns if c not in self.extra)

    def least(self, column: str, rows: Sequence[Mapping[str, str]]) -> int:
        """The fewest characters `column` keeps in the default view."""
        return _least(column, [r[column] for r in rows],
                      column == self.columns[0] or column in self.wrap)

    def natural(self, column: str, rows: Sequence[Mapping[str, str]]) -> int:
        """The characters `column` takes with every cell and its header on one line."""
        return max([*(line_width(r[column]) for r in rows), len(column)])

    def fits(self, rows: Sequence[Mapping[str, str]], width: int | None) -> bool:
        """Whether every column fits `width` with each cell and header on one line."""
        total = sum(self.natural(c, rows) for c in self.columns) + len(self.columns) + 1
        return width is None or total <= width

    def shown(self, rows: Sequence[Mapping[str, str]], wide: bool, width: int | None) -> list[str]:
        """The columns shown: all when `wide`; else the `extra` ones only while the whole table
        fits `width` with every cell on one line (left out in order until it does), then the
        default ones that fit (`drop_first` left out in order, see `fitting`)."""
        if wide:
            return list(self.columns)
        label, *rest = self.columns
        whole = fitting({c: self.natural(c, rows) for c in rest}, self.extra,
                        self.natural(label, rows), width)
        least = fitting({c: self.least(c, rows) for c in whole}, self.drop_first,
                        self.least(label, rows), width)
        return [label, *least]


def fit(layout: Layout, title: str | None, rows: Sequence[Mapping[str, str]], wide: bool,
        width: int | None, total: bool = False) -> Table:
    """`rows` as a table of `layout`'s columns that fit `width` (every column when `wide`)."""
    columns = layout.shown(rows, wide, width)
    return grid(title, columns, [[r[c] for c in columns] for r in rows], layout.left, wide, total,
                layout.wrap, width)
