"""`POST /v1/feedback`: a caller's rating (1–5), task success and comment for a request id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError, LLMRouteError, NotFoundError

MAX_COMMENT = 4000


@dataclass(frozen=True)
class Feedback:
    """Validated feedback."""

    request_id: str
    rating: int | None
    success: bool | None
    comment: str | None


def parse_feedback(data: Mapping[str, Any]) -> Feedback:
    """Validate a feedback body; 400 naming the field on anything wrong."""
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidRequestError("`request_id` (a string) is required.", param="request_id")
    rating = data.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                               or not 1 <= rating <= 5):
        raise InvalidRequestError("`rating` must be an integer from 1 to 5.", param="rating")
    success = data.get("success")
    if success is not None and not isinstance(success, bool):
        raise InvalidRequestError("`success` must be true or false.", param="success")
    comment = data.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise InvalidRequestError(f"`comment` must be a string of at most {MAX_COMMENT} "
                                  "characters.", param="comment")
    if rating is None and success is None and comment is None:
        raise InvalidRequestError("Give at least one of `rating`, `success` or `comment`.")
    unknown = sorted(set(data) - {"request_id", "rating", "success", "comment"})
    if unknown:
        raise InvalidRequestError(f"Unknown field(s): {', '.join(unknown)}.", param=unknown[0])
    return Feedback(request_id, rating, success, comment)


def not_found(request_id: str) -> LLMRouteError:
    """The 404 for an unknown request id."""
    return NotFoundError(f"No request {request_id!r} in the ledger.", param="request_id",
                         code="request_not_found")
