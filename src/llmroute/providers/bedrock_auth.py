"""How a Bedrock entry authenticates, and what `llmroute config check` says about it.

With `api_key_env` (a Bedrock API key, e.g. `AWS_BEARER_TOKEN_BEDROCK`) requests carry
`Authorization: Bearer KEY`: nothing more is needed. Otherwise every request is SigV4-signed by
botocore (the `bedrock` extra, `aws_auth.py`) with credentials from botocore's full chain; the
region is the entry's `region`, else the one in its `base_url`'s host, else `AWS_REGION`, else
`AWS_DEFAULT_REGION` or the profile's `region`. `base_url` defaults to
`https://bedrock-runtime.{region}.amazonaws.com`.

This module does not import botocore: `aws_auth` is imported only once the extra is known to be
there, so a gateway without it still starts (and `config check` says what is missing).
"""

from __future__ import annotations

import importlib
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigProblem
from ..settings import ProviderConfig

EXTRA = "the `bedrock` extra (botocore): pip install 'llmroute[bedrock]'"
_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")
#: Environment variables that point botocore's chain at credentials (besides the key pair).
_CHAIN_VARS = ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")


def botocore_missing() -> bool:
    """Whether the `bedrock` extra is not installed."""
    try:
        importlib.import_module("botocore")
    except ImportError:
        return True
    return False


def default_base_url(region: str) -> str:
    """Bedrock Runtime's public endpoint in `region`."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def explicit_region(config: ProviderConfig, environ: Mapping[str, str]) -> str | None:
    """The region named without reading any AWS file: configured, else in the base URL's host,
    else AWS_REGION / AWS_DEFAULT_REGION."""
    if config.region:
        return config.region
    found = _HOST_REGION.search(urllib.parse.urlsplit(config.base_url).netloc)
    if found:
        return found.group(1)
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def region_of(config: ProviderConfig, environ: Mapping[str, str]) -> str | None:
    """The signing region: `explicit_region`, else the profile's `region` (with the extra)."""
    region = explicit_region(config, environ)
    if region is not None or botocore_missing():
        return region
    from .aws_auth import profile_region, session_for
    return profile_region(session_for(environ, config.profile))


def _credentials_in_sight(config: ProviderConfig, environ: Mapping[str, str]) -> bool:
    """Whether anything but instance metadata could give the chain credentials (no file is
    parsed, no process run)."""
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if config.profile or any(environ.get(name) for name in _CHAIN_VARS):
        return True
    files = (environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
             environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    return any(Path(f).expanduser().is_file() for f in files)


def bedrock_problems(name: str, config: ProviderConfig, environ: Mapping[str, str]
                     ) -> list[ConfigProblem]:
    """What `llmroute config check` says about a Bedrock entry: the extra missing (an error,
    unless it uses a Bedrock API key), no credentials in sight (a warning), no region."""
    if config.api_key_env:  # a Bedrock API key: no signing (its env var is checked like others)
        if config.base_url or explicit_region(config, environ):
            return []
        return [ConfigProblem(f"providers.{name}.region", "no AWS region for the default "
                              "base_url", "set `region:`, `base_url:` or AWS_REGION")]
    if botocore_missing():
        return [ConfigProblem(f"providers.{name}.type", "a `type: bedrock` provider signs its "
                              f"requests with botocore, which is not installed: install {EXTRA}",
                              "or use a Bedrock API key (`api_key_env`)")]
    problems: list[ConfigProblem] = []
    if not _credentials_in_sight(config, environ):
        problems.append(ConfigProblem(
            f"providers.{name}", "no AWS credentials in sight (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, the shared credentials or config file, container "
            "credentials): unless instance metadata provides them, every call to this Bedrock "
            "provider will fail (auth)", "export the keys, or set `profile:` / AWS_PROFILE",
            severity="warning"))
    if region_of(config, environ) is None:
        # a named profile's files may be the deployment's, not those of the checking machine
        named = bool(config.profile or environ.get("AWS_PROFILE"))
        problems.append(ConfigProblem(
            f"providers.{name}.region", "no AWS region to sign requests for" + (
                ": the profile gives none here" if named else ""), "set `region:`, use a "
            "bedrock-runtime.REGION.amazonaws.com base_url, set AWS_REGION, or a `region` in "
            "the profile", severity="warning" if named else "error"))
    return problems
