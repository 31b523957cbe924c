"""`GET /openapi.json`: the gateway's API as OpenAPI 3.1, behind a gateway key like the other
endpoints, covering every route, generated from the wire models the server validates with."""

from __future__ import annotations

import json
import re
from typing import Any

from llmroute.server.auth import hash_key
from llmroute.server.openapi import build_openapi

from .support import Serve, assert_openai_error

KEY = "lr-openapi-key"


def refs(node: Any) -> set[str]:
    """Every `$ref` in a document."""
    return set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(node)))


def test_it_needs_a_key_and_documents_every_route(serve: Serve) -> None:
    gw = serve({"keys": [{"name": "k", "hash": hash_key(KEY)}]})
    with gw.http() as http:
        refused = http.get("/openapi.json")
        assert refused.status_code == 401
        assert assert_openai_error(refused.json())["type"] == "authentication_error"
        response = http.get("/openapi.json", headers={"authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    # the dashboard's routes are a browser's (a page, its data, the login form), not the API
    routes = {route.path for route in gw.app.routes if not route.path.startswith("/dashboard")}
    assert routes <= set(doc["paths"]), routes - set(doc["paths"])
    assert KEY not in response.text


def test_every_ref_resolves_and_the_chat_body_is_the_wire_model() -> None:
    doc = build_openapi("0")
    schemas = doc["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in refs(doc)} <= set(schemas)
    body = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"][
        "application/json"]
    chat = schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]
    assert chat["properties"]["messages"]["minItems"] == 1
    assert chat.get("additionalProperties", True) is True  # unknown fields pass through
    assert schemas["FunctionDefinition"]["properties"]["name"]["pattern"] == r"^[a-zA-Z0-9_-]{1,64}$"
    assert set(schemas["UserMessage"]["required"]) == {"role", "content"}
    assert body["example"]["model"] == "auto"
