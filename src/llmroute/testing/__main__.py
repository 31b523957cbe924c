"""Run the fake upstream as a standalone process: `python -m llmroute.testing [--port N]`.

Useful for demos and for throughput benchmarks, where a server thread would share the GIL
with the load generator.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Sequence

from llmroute.testing.upstream import FakeUpstream


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted; prints the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m llmroute.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="require this key")
    parser.add_argument("--no-record", action="store_true", help="keep no request records")
    args = parser.parse_args(argv)
    upstream = FakeUpstream(port=args.port, api_key=args.api_key, record=not args.no_record)
    with upstream:
        print(upstream.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
