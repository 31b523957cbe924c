"""Request ids (issue 17, sqlite17): the same form as before (`req_` + 32 hex digits), unique, and in
the order they were made, so the ledger's primary-key index grows at its end."""

from __future__ import annotations

import re
import time

from llmroute.gateway import new_request_id


def test_ids_keep_their_form_and_are_unique() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", rid) for rid in ids)
    assert len(set(ids)) == len(ids)


def test_ids_sort_in_the_order_they_were_made() -> None:
    made = []
    for _ in range(30):
        made.append(new_request_id())
        time.sleep(0.002)  # past the millisecond: the time digits differ
    assert sorted(made) == made


def test_the_time_digits_are_the_milliseconds_and_the_rest_is_random() -> None:
    before = time.time_ns() // 1_000_000
    rid = new_request_id()
    after = time.time_ns() // 1_000_000
    assert before <= int(rid[4:16], 16) <= after
    tails = {new_request_id()[16:] for _ in range(1000)}  # 80 random bits each
    assert len(tails) == 1000
