"""Header names seen on nearly every request and answer, each with the `str` the per-header decoding
would give, so the server (`server.asgi.request_headers`) and the upstream client (`providers.h1`)
look a known name up instead of decoding it (issue 17, cut17e); any other name is decoded as before."""

from __future__ import annotations

from typing import Final

#: Request header names clients commonly send (lower-case, as ASGI servers pass them), each
#: with its `decode("latin-1")`: looked up instead of decoded per header (issue 17).
REQUEST_NAMES: Final[dict[bytes, str]] = {name.encode("latin-1"): name for name in (
    "host", "content-type", "content-length", "authorization", "x-api-key", "user-agent",
    "cache-control",
    "accept", "accept-encoding", "accept-language", "connection", "keep-alive",
    "transfer-encoding", "traceparent", "tracestate", "x-request-id", "x-forwarded-for",
    "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "openai-organization",
    "openai-project", "anthropic-version", "anthropic-beta", "x-stainless-lang",
    "x-stainless-package-version", "x-stainless-os", "x-stainless-arch",
    "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-async",
    "x-stainless-retry-count", "x-stainless-read-timeout", "x-stainless-timeout")}

#: Answer header names upstreams commonly send, as sent (lower-case or Title-Case), each with
#: its `decode("latin-1").lower()`: looked up instead of computed per header (issue 17); any
#: other name is decoded and lowered as before.
ANSWER_NAMES: Final[dict[bytes, str]] = {
    raw: raw.decode("latin-1").lower()
    for name in (
        "content-type", "content-length", "content-encoding", "transfer-encoding", "connection",
        "keep-alive", "date", "server", "vary", "via", "retry-after", "retry-after-ms",
        "x-request-id", "request-id", "openai-organization", "openai-processing-ms",
        "openai-version", "openai-project", "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
        "strict-transport-security", "x-content-type-options", "cf-cache-status", "cf-ray",
        "set-cookie", "alt-svc", "access-control-expose-headers", "anthropic-organization-id",
        "x-amzn-requestid", "x-amzn-errortype", "x-envoy-upstream-service-time",
        "x-ms-region", "apim-request-id", "azureml-model-session")
    for raw in (name.encode("latin-1"), name.title().encode("latin-1"))}
