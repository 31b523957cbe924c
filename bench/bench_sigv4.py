"""SigV4 signing cost per Bedrock request: botocore's SigV4Auth (what the gateway uses now,
`providers/aws_auth.sign`) against the hand-written signer it replaced (read from git at
b5ab053, `src/llmroute/providers/aws_sigv4.py`). Both time a 2 kB Converse body, in one process.

    PYTHONPATH=src .venv/bin/python bench/bench_sigv4.py
"""

from __future__ import annotations

import subprocess
import sys
import timeit
import types
from datetime import UTC, datetime

from llmroute.providers.aws_auth import Frozen, sign

OLD = "b5ab053:src/llmroute/providers/aws_sigv4.py"
URL = ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
       "us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")
HEADERS = {"content-type": "application/json", "accept": "application/json"}
BODY = b'{"messages":[{"role":"user","content":[{"text":"' + b"x" * 2000 + b'"}]}]}'
CREDENTIALS = Frozen("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token")


def old_signer() -> types.ModuleType:
    source = subprocess.run(["git", "show", OLD], check=True, capture_output=True,
                            text=True).stdout
    module = types.ModuleType("old_sigv4")
    sys.modules["old_sigv4"] = module  # dataclasses look their module up
    exec(compile(source, OLD, "exec"), module.__dict__)  # this repository's own history
    return module


def main(rounds: int = 3, number: int = 5000) -> None:
    old = old_signer()
    credentials = old.Credentials(CREDENTIALS.access_key, CREDENTIALS.secret_key,
                                  CREDENTIALS.token)
    for index in range(rounds):
        hand = timeit.timeit(lambda: old.sign("POST", URL, HEADERS, BODY, credentials,
                                              "us-east-1", "bedrock", datetime.now(UTC)),
                             number=number) / number
        boto = timeit.timeit(lambda: sign("POST", URL, HEADERS, BODY, CREDENTIALS, "us-east-1"),
                             number=number) / number
        print(f"round {index}: hand-written {hand * 1e6:.0f} us, botocore {boto * 1e6:.0f} us "
              f"per request ({boto / hand:.1f}x)")


if __name__ == "__main__":
    main()
