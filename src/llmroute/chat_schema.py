"""The OpenAI Chat Completions request schema as typed wire models (pydantic TypedDicts: validated
in Rust, returned as plain dicts). It follows the official `openai` SDK's request types: messages
per role, content parts, tool calls, tools, `tool_choice`, `response_format`, `stop`, `logit_bias`
and the numeric ranges. Keys a model does not know are not checked and pass through (the server
forwards the body as sent; ignoring them in validation is ~30 % cheaper than copying them), so a
field OpenAI adds keeps working. Every model is strict: a value pydantic would coerce ("0.5", 1
for true) is refused, since the body is forwarded as sent. Union members carry tags
`field=<value>` (`by_tag`), which `chat.param_of` drops from an error's location to name the field
the way OpenAI does."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import ConfigDict, Discriminator, Field, StringConstraints, Tag, with_config
from typing_extensions import TypedDict

_wire = with_config(ConfigDict(extra="ignore", strict=True))
#: Function, tool and schema names (OpenAI: a-z, A-Z, 0-9, underscores and dashes, at most 64).
Name = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
TokenId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
Bias = Annotated[int, Field(ge=-100, le=100)]
#: Token ids (their JSON Schema: only keys matching the pattern).
LogitBias = Annotated[dict[TokenId, Bias], Field(json_schema_extra={"additionalProperties": False})]
Penalty = Annotated[float, Field(ge=-2, le=2)]
#: JSON Schema objects (tool parameters, response schemas) are passed through, not interpreted.
JSONObject = dict[str, Any]
INT64 = 2**63
#: The error type of a tagged union whose tag is unknown: TAG_ERROR + the tag's field.
TAG_ERROR = "tag:"


def by_tag(field: str) -> Discriminator:
    """A union discriminated by `field`: the member tagged `field=<value>` (`field?` when the value
    is missing or not a string: no member matches, and the error names `field`; no tag when the
    input is not an object: the error names the union's place). See `chat.param_of`."""

    def tag(value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        kind = value.get(field)
        return f"{field}={kind}" if isinstance(kind, str) else f"{field}?"

    return Discriminator(tag, custom_error_type=f"{TAG_ERROR}{field}",
                         custom_error_message=f"unknown or missing '{field}'")


# --------------------------------------------------------------------------- content parts


@_wire
class CacheControl(TypedDict):
    """An Anthropic-style prompt-cache breakpoint (as LiteLLM and OpenRouter accept it) on a
    content part, a message or a tool; see providers/cache_control.py."""

    type: Literal["ephemeral"]
    ttl: NotRequired[Literal["5m", "1h"]]


@_wire
class TextPart(TypedDict):
    type: Literal["text"]
    text: str
    cache_control: NotRequired[CacheControl | None]


@_wire
class ImageURL(TypedDict):
    url: str
    detail: NotRequired[Literal["auto", "low", "high", "original"]]


@_wire
class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL
    cache_control: NotRequired[CacheControl | None]


@_wire
class InputAudio(TypedDict):
    data: str
    format: Literal["wav", "mp3"]


@_wire
class AudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio


@_wire
class FileRef(TypedDict, total=False):
    file_data: str
    file_id: str
    filename: str


@_wire
class FilePart(TypedDict):
    type: Literal["file"]
    file: FileRef
    cache_control: NotRequired[CacheControl | None]


@_wire
class RefusalPart(TypedDict):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[
    Annotated[TextPart, Tag("type=text")] | Annotated[ImagePart, Tag("type=image_url")]
    | Annotated[AudioPart, Tag("type=input_audio")] | Annotated[FilePart, Tag("type=file")],
    by_tag("type")]
AssistantPart = Annotated[
    Annotated[TextPart, Tag("type=text")] | Annotated[RefusalPart, Tag("type=refusal")],
    by_tag("type")]
TextContent = str | Annotated[list[TextPart], Field(min_length=1)]

# --------------------------------------------------------------------------- tool calls and tools


@_wire
class FunctionCall(TypedDict):
    name: str
    arguments: str


@_wire
class FunctionToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


@_wire
class CustomCall(TypedDict):
    name: str
    input: str


@_wire
class CustomToolCall(TypedDict):
    id: str
    type: Literal["custom"]
    custom: CustomCall


ToolCall = Annotated[
    Annotated[FunctionToolCall, Tag("type=function")] | Annotated[CustomToolCall, Tag("type=custom")],
    by_tag("type")]


@_wire
class FunctionDefinition(TypedDict):
    name: Name
    description: NotRequired[str]
    parameters: NotRequired[JSONObject]
    strict: NotRequired[bool | None]


@_wire
class FunctionTool(TypedDict):
    type: Literal["function"]
    function: FunctionDefinition
    cache_control: NotRequired[CacheControl | None]


@_wire
class CustomDefinition(TypedDict):
    name: Name
    description: NotRequired[str]
    format: NotRequired[JSONObject]


@_wire
class CustomTool(TypedDict):
    type: Literal["custom"]
    custom: CustomDefinition


Tool = Annotated[
    Annotated[FunctionTool, Tag("type=function")] | Annotated[CustomTool, Tag("type=custom")],
    by_tag("type")]


@_wire
class NamedFunction(TypedDict):
    name: str


@_wire
class FunctionChoice(TypedDict):
    type: Literal["function"]
    function: NamedFunction


@_wire
class CustomChoice(TypedDict):
    type: Literal["custom"]
    custom: NamedFunction


@_wire
class AllowedTools(TypedDict):
    mode: Literal["auto", "required"]
    tools: list[JSONObject]


@_wire
class AllowedToolsChoice(TypedDict):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | Annotated[
    Annotated[FunctionChoice, Tag("type=function")] | Annotated[CustomChoice, Tag("type=custom")]
    | Annotated[AllowedToolsChoice, Tag("type=allowed_tools")], by_tag("type")]


@_wire
class LegacyFunction(TypedDict):
    name: Name
    description: NotRequired[str]
    parameters: NotRequired[JSONObject]


# --------------------------------------------------------------------------- messages


@_wire
class SystemMessage(TypedDict):
    role: Literal["system", "developer"]
    content: TextContent
    name: NotRequired[str]
    cache_control: NotRequired[CacheControl | None]


@_wire
class UserMessage(TypedDict):
    role: Literal["user"]
    content: str | Annotated[list[UserPart], Field(min_length=1)]
    name: NotRequired[str]
    cache_control: NotRequired[CacheControl | None]


@_wire
class AudioRef(TypedDict):
    id: str


@_wire
class ThinkingBlock(TypedDict):
    """An Anthropic thinking block an assistant message carries back (as LiteLLM's
    `thinking_blocks`): the signature lets Anthropic check it (needed with tools)."""

    type: Literal["thinking"]
    thinking: str
    signature: str


@_wire
class RedactedThinkingBlock(TypedDict):
    type: Literal["redacted_thinking"]
    data: str


ThinkingBlocks = list[Annotated[
    Annotated[ThinkingBlock, Tag("type=thinking")]
    | Annotated[RedactedThinkingBlock, Tag("type=redacted_thinking")], by_tag("type")]]


@_wire
class AssistantMessage(TypedDict, total=False):
    role: Required[Literal["assistant"]]
    content: str | Annotated[list[AssistantPart], Field(min_length=1)] | None
    refusal: str | None
    name: str
    audio: AudioRef | None
    tool_calls: list[ToolCall]
    function_call: FunctionCall | None
    cache_control: CacheControl | None
    reasoning_content: str | None
    thinking_blocks: ThinkingBlocks | None


@_wire
class ToolMessage(TypedDict):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str
    cache_control: NotRequired[CacheControl | None]


@_wire
class FunctionMessage(TypedDict):
    role: Literal["function"]
    content: str | None
    name: str


Message = Annotated[
    Annotated[SystemMessage, Tag("role=system")] | Annotated[SystemMessage, Tag("role=developer")]
    | Annotated[UserMessage, Tag("role=user")] | Annotated[AssistantMessage, Tag("role=assistant")]
    | Annotated[ToolMessage, Tag("role=tool")] | Annotated[FunctionMessage, Tag("role=function")],
    by_tag("role")]

# --------------------------------------------------------------------------- request options


@_wire
class JSONSchemaFormat(TypedDict):
    name: Name
    description: NotRequired[str]
    schema: NotRequired[JSONObject]
    strict: NotRequired[bool | None]


@_wire
class TextFormat(TypedDict):
    type: Literal["text"]


@_wire
class JSONObjectFormat(TypedDict):
    type: Literal["json_object"]


@_wire
class SchemaFormat(TypedDict):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[
    Annotated[TextFormat, Tag("type=text")] | Annotated[JSONObjectFormat, Tag("type=json_object")]
    | Annotated[SchemaFormat, Tag("type=json_schema")], by_tag("type")]


@_wire
class StreamOptions(TypedDict, total=False):
    include_usage: bool
    include_obfuscation: bool


@_wire
class Plugin(TypedDict):
    """An OpenRouter-style plugin entry (the gateway's own; never forwarded)."""

    id: str
    allowed_models: NotRequired[list[str]]
    excluded_models: NotRequired[list[str]]


@_wire
class ChatBody(TypedDict, total=False):
    """A chat-completions body: the fields the gateway checks; everything else passes through.
    Optional fields may be null (as the gateway always allowed for `tools`, `user`, ...)."""

    model: str | None
    messages: Required[Annotated[list[Message], Field(min_length=1)]]
    stream: bool | None
    stream_options: StreamOptions | None
    max_tokens: Annotated[int, Field(ge=1)] | None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None
    n: Annotated[int, Field(ge=1, le=128)] | None
    temperature: Annotated[float, Field(ge=0, le=2)] | None
    top_p: Annotated[float, Field(ge=0, le=1)] | None
    frequency_penalty: Penalty | None
    presence_penalty: Penalty | None
    logprobs: bool | None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None
    logit_bias: LogitBias | None
    seed: Annotated[int, Field(ge=-INT64, lt=INT64)] | None
    stop: str | Annotated[list[str], Field(max_length=4)] | None
    tools: list[Tool] | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool | None
    functions: Annotated[list[LegacyFunction], Field(min_length=1, max_length=128)] | None
    function_call: Literal["none", "auto"] | NamedFunction | None
    response_format: ResponseFormat | None
    user: str | None
    metadata: dict[str, str] | None
    store: bool | None
    modalities: list[Literal["text", "audio"]] | None
    # Checked for their type only: their values are for the upstream to judge (new levels,
    # tiers and options keep working).
    reasoning_effort: str | None
    thinking: JSONObject | None  # Anthropic's form; checked by reasoning.reasoning_of
    service_tier: str | None
    verbosity: str | None
    safety_identifier: str | None
    prompt_cache_key: str | None
    audio: JSONObject | None
    prediction: JSONObject | None
    web_search_options: JSONObject | None
    plugins: list[Plugin] | None
    models: list[str] | None
