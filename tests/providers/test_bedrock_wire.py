"""Unit tests of the Bedrock pieces: the fake's SigV4 verifier against independent vectors
(AWS's documented example and signatures botocore 1.44.18 computed), botocore's signing (what the
gateway sends) accepted by that verifier, the event-stream framing (a frame botocore's
parser read back), the OpenAI ⇄ Converse translation and the exception mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from llmroute.providers.anthropic_errors import WireError
from llmroute.providers.aws_auth import Frozen, sign
from llmroute.providers.bedrock_wire import (
    anthropic_message,
    classify,
    exception_name,
    stream_event,
    to_converse_request,
)
from llmroute.providers.eventstream import Decoder, EventStreamError, encode
from llmroute.testing._bedrock_wire import check_signature
from llmroute.testing._sigv4 import (
    Credentials,
    Scope,
    canonical_request,
    parse_authorization,
    signature,
)

KEY = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
HAIKU_URL = ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
             "us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")
ARN_URL = ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-west-1"
           "%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-5-haiku-20241022-v1%3A0"
           "/converse-stream")


def test_the_verifier_matches_awss_documented_example() -> None:
    # "Create a signed AWS API request", IAM ListUsers (docs.aws.amazon.com/IAM/latest/UserGuide)
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
               "host": "iam.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    signed = ["content-type", "host", "x-amz-date"]
    canonical = canonical_request("GET", "/", "Action=ListUsers&Version=2010-05-08", headers,
                                  signed, b"")
    assert signature(KEY.secret_access_key, Scope("20150830", "us-east-1", "iam"),
                     "20150830T123600Z", canonical) == (
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


# Signatures botocore 1.44.18 (SigV4Auth.add_auth) computed for these requests at this time.
BOTOCORE = [
    (HAIKU_URL, None, "f628e194df411e5d5ca19f957c091eb14a5cac2d1f29ef7a78a88f050404d87f"),
    (HAIKU_URL, "FQoGZXIvYXdzEXAMPLETOKEN",
     "77b8278568de3be19990ee49604dd950a8c7d0780b36fa9edf54a5200282a1a2"),
    (ARN_URL, None, "5a74a0d0bdafe36bdcd2ba03d7278be20b35d9660679534c1df5e443f00c9a66"),
    (ARN_URL, "FQoGZXIvYXdzEXAMPLETOKEN",
     "4c0c6d45a9d11de336bfa18d6dec83cc07cd79d4edb1410d3f6ed6b771290e68"),
]


@pytest.mark.parametrize(("url", "token", "expected"), BOTOCORE)
def test_the_verifier_computes_botocores_signatures_of_bedrock_requests(
        url: str, token: str | None, expected: str) -> None:
    parts = urlsplit(url)
    stamp = "20261206T034329Z"
    headers = {**JSON_HEADERS, "host": parts.netloc, "x-amz-date": stamp,
               **({"x-amz-security-token": token} if token else {})}
    canonical = canonical_request("POST", parts.path, "", headers, sorted(headers), BODY)
    region = url.split(".")[1]
    assert signature(KEY.secret_access_key, Scope(stamp[:8], region, "bedrock"), stamp,
                     canonical) == expected


def botocore_signed(credentials: Frozen, url: str = HAIKU_URL) -> dict[str, str]:
    return sign("POST", url, JSON_HEADERS, BODY, credentials, url.split(".")[1])


def test_botocore_signs_what_the_fake_accepts_and_the_fake_names_what_is_wrong_otherwise(
) -> None:
    now = datetime.now(UTC)
    signed = botocore_signed(Frozen(KEY.access_key_id, KEY.secret_access_key, None))
    auth = parse_authorization(signed["authorization"])
    assert auth is not None and auth.scope.service == "bedrock"
    assert auth.scope.region == "us-east-1" and "x-amz-security-token" not in signed
    host = "bedrock-runtime.us-east-1.amazonaws.com"
    headers = {**JSON_HEADERS, **signed, "host": host}
    path = HAIKU_URL.split(host)[1]

    def check(**changes: Any) -> str | None:
        args = {"method": "POST", "raw_path": path, "query": "", "headers": headers,
                "payload": BODY, "now": now, **changes}
        error = check_signature(**args)
        return None if error is None else error.type

    assert check() is None
    assert check(payload=BODY + b" ") == "InvalidSignatureException"
    assert check(raw_path=path.replace("haiku", "sonnet")) == "InvalidSignatureException"
    assert check(headers={**headers, "content-type": "text/plain"}) == "InvalidSignatureException"
    assert check(now=now + timedelta(minutes=6)) == "InvalidSignatureException"
    assert check(headers=JSON_HEADERS) == "MissingAuthenticationTokenException"
    other = botocore_signed(Frozen("AKIDOTHER", "x", None))
    assert check(headers={**headers, **other}) == "UnrecognizedClientException"
    wrong = botocore_signed(Frozen(KEY.access_key_id, "not-the-secret", None))
    assert check(headers={**headers, **wrong}) == "InvalidSignatureException"


def test_temporary_credentials_sign_their_session_token() -> None:
    token = "FQoGZXIvYXdzEXAMPLETOKEN"
    signed = botocore_signed(Frozen(KEY.access_key_id, KEY.secret_access_key, token), ARN_URL)
    auth = parse_authorization(signed["authorization"])
    assert signed["x-amz-security-token"] == token
    assert auth is not None and "x-amz-security-token" in auth.signed
    parts = urlsplit(ARN_URL)
    headers = {**JSON_HEADERS, **signed, "host": parts.netloc}
    assert check_signature("POST", parts.path, "", headers, BODY, datetime.now(UTC)) is None


# A frame botocore 1.44.18's EventStreamBuffer parsed back into these headers and this payload.
FRAME = bytes.fromhex(
    "0000009400000057b4ab9aee0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c7461"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74"
    "7970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b22"
    "74657874223a224869227d7d1f944657")
FRAME_HEADERS = {":event-type": "contentBlockDelta", ":content-type": "application/json",
                 ":message-type": "event"}
FRAME_PAYLOAD = b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}'


def test_event_stream_frames_are_byte_exact_and_decode_in_any_split() -> None:
    assert encode(FRAME_HEADERS, FRAME_PAYLOAD) == FRAME
    decoder = Decoder()
    messages = [m for i in range(len(FRAME * 2)) for m in decoder.feed((FRAME * 2)[i:i + 1])]
    assert [(dict(m.headers), m.payload) for m in messages] == [(FRAME_HEADERS, FRAME_PAYLOAD)] * 2
    assert decoder.pending == 0


@pytest.mark.parametrize("at_byte", [5, 20, len(FRAME) - 1])
def test_a_corrupted_frame_is_refused(at_byte: int) -> None:
    broken = bytearray(FRAME)
    broken[at_byte] ^= 0x01
    with pytest.raises(EventStreamError):
        list(Decoder().feed(bytes(broken)))


def test_malformed_headers_under_valid_checksums_are_refused() -> None:
    import binascii
    import struct

    head = b"\x05:type\x07\x00\xff"  # a string header claiming 255 bytes it does not have
    total = 12 + len(head) + 4
    prelude = struct.pack(">II", total, len(head))
    body = prelude + struct.pack(">I", binascii.crc32(prelude)) + head
    with pytest.raises(EventStreamError, match="malformed"):
        list(Decoder().feed(body + struct.pack(">I", binascii.crc32(body))))


def converse(body: dict[str, Any]) -> dict[str, Any]:
    return to_converse_request(body, "anthropic.claude-3-5-haiku-20241022-v1:0")


def test_a_request_becomes_converse_blocks() -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    request = converse({
        "messages": [{"role": "system", "content": "sys"},
                     {"role": "user", "content": [
                         {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                         {"type": "image_url", "image_url": {"url": image}}]}],
        "max_completion_tokens": 77, "top_p": 0.5, "top_k": 5, "stop": "STOP"})
    assert request == {
        "system": [{"text": "sys"}],
        "messages": [{"role": "user", "content": [
            {"text": "look"}, {"cachePoint": {"type": "default"}},
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]}],
        "inferenceConfig": {"maxTokens": 77, "topP": 0.5, "stopSequences": ["STOP"]},
        "additionalModelRequestFields": {"top_k": 5}}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "none",
      "tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
])
def test_what_converse_cannot_take_is_refused_naming_the_param(body: dict[str, Any],
                                                               param: str) -> None:
    with pytest.raises(WireError) as caught:
        converse(body)
    assert caught.value.param == param


def test_an_answer_with_text_and_a_tool_use_and_cache_usage() -> None:
    message = anthropic_message({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 2015,
                  "cacheReadInputTokens": 2000, "cacheWriteInputTokens": 0}}, "req1")
    assert message["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 5,
                                "cache_read_input_tokens": 2000,
                                "cache_creation_input_tokens": 0}
    with pytest.raises(ValueError):
        anthropic_message({"output": {}}, "req2")


def test_stream_events_map_to_anthropic_events_and_metadata_ends_the_message() -> None:
    assert stream_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
        "toolUse": {"input": '{"a"'}}}, "r") == [
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta",
                                                       "partial_json": '{"a"'}})]
    assert stream_event("messageStop", {"stopReason": "guardrail_intervened"}, "r") == [
        ("message_delta", {"delta": {"stop_reason": "refusal"}})]
    names = [n for n, _ in stream_event("metadata", {"usage": {"inputTokens": 3}}, "r")]
    assert names == ["message_delta", "message_stop"]
    assert stream_event("contentBlockStart", {"start": {"reasoning": {}}}, "r") == []


@pytest.mark.parametrize(("status", "header", "message", "kind"), [
    (429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", "",
     "rate_limit"),
    (400, "ValidationException", "Input is too long for requested model.", "context_window"),
    (400, "ValidationException", "messages: field required", "bad_request"),
    (403, "AccessDeniedException", "", "permission"),
    (403, "UnrecognizedClientException", "", "auth"),
    (408, "ModelTimeoutException", "", "timeout"),
    (429, "ModelNotReadyException", "", "overloaded"),
    (503, "ServiceUnavailableException", "", "overloaded"),
    (500, "InternalServerException", "", "server"),
    (200, "modelStreamErrorException", "", "server"),  # in a stream, lower camel case
    (502, "", "", "server"),
    (418, "", "", "bad_request"),
])
def test_bedrock_exceptions_map_to_our_kinds(status: int, header: str, message: str,
                                             kind: str) -> None:
    name = exception_name({"x-amzn-errortype": header} if header else {}, {})
    assert classify(status, name, message) == kind


def test_the_exception_name_may_come_from_the_body() -> None:
    body = {"__type": "com.amazon.coral.service#ThrottlingException"}
    assert exception_name({}, body) == "ThrottlingException"
