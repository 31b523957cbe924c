"""Are any of bench/data/routellm-mmlu's prompts in the shared training data? (issue 13)

    PYTHONPATH=src python bench/routellm_mmlu_overlap.py [--data bench/data/routellm-mmlu]
                                                         [--shared ../shared/data]

For every CSV prompt, its question stem (the text before the first "\\nA. " option line; the whole
prompt when there is none), lowercased with whitespace collapsed, is searched as a substring of every
shared record's prompt and bare question (`query`), normalised the same way. Stems shorter than
`--min-chars` (default 30) are counted as skipped, not searched (too generic to mean anything).
The whole prompt (stem and its options, without the trailing "Answer:") is searched the same way, so
a generic stem ("Which of the following is true?") can be told from a copied question. Prints the
counts and every hit.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from llmroute.learn.data import json_lines, prompt_of
from llmroute.learn.public_eval import DEFAULT_DATA, load_dir

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, whitespace runs to one space, stripped."""
    return _SPACE.sub(" ", text).strip().lower()


def stem(prompt: str) -> str:
    """The question before its first option line."""
    return prompt.split("\nA. ", 1)[0]


def shared_texts(folder: Path) -> Iterator[str]:
    """Every shared record's normalised prompt and `query`."""
    for path in sorted(folder.rglob("*.jsonl")):
        for _, obj in json_lines(path):
            yield normalise(prompt_of(obj))
            if isinstance(obj.get("query"), str):
                yield normalise(obj["query"])


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--min-chars", type=int, default=30)
    args = parser.parse_args(argv)
    haystack = "\n".join(shared_texts(args.shared))
    checked = skipped = 0
    hits: list[tuple[str, str]] = []
    whole = 0
    for subject, data in load_dir(args.data).items():
        for prompt in data.prompts:
            needle = normalise(stem(prompt))
            if len(needle) < args.min_chars:
                skipped += 1
                continue
            checked += 1
            if needle in haystack:
                hits.append((subject, needle))
                whole += normalise(prompt.removesuffix("Answer:")) in haystack
    print(f"shared text: {len(haystack):,} chars from {args.shared}")
    print(f"stems searched: {checked}; skipped (< {args.min_chars} chars): {skipped}; "
          f"found in shared data: {len(hits)}; of those, whole prompt (with options) found: {whole}")
    for subject, needle in hits:
        print(f"  {subject}: {needle[:120]}")


if __name__ == "__main__":
    main()
