"""Run the fake upstream as a standalone process: `python -m llmroute.testing [--port N]`.

Useful for demos and for throughput benchmarks, where a server thread would share the GIL
with the load generator. `--chaos P` turns on the chaos mode for every model: each request
fails with probability P, spread evenly over 429 (Retry-After), 500, 503, connection reset,
hang, slow stream and cut stream (`behaviours.Chaos`), drawn from an RNG seeded by `--seed`.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Sequence

from llmroute.testing.behaviours import Chaos
from llmroute.testing.upstream import FakeUpstream


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted; prints the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m llmroute.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="require this key")
    parser.add_argument("--no-record", action="store_true", help="keep no request records")
    parser.add_argument("--chaos", type=float, default=0.0, metavar="P",
                        help="fault probability per request, over the seven chaos faults")
    parser.add_argument("--seed", type=int, default=None, help="seed of the chaos RNG")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="S",
                        help="Retry-After of the chaos 429s")
    args = parser.parse_args(argv)
    upstream = FakeUpstream(port=args.port, api_key=args.api_key, record=not args.no_record,
                            seed=args.seed)
    if args.chaos > 0:
        upstream.set_default("*", Chaos.uniform(args.chaos, retry_after_s=args.retry_after))
    with upstream:
        print(upstream.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
