"""Settings of the upstream call path: providers (wire protocol, base URL, credentials, timeouts)
and resilience (the request's deadline, retries, cooldowns). Part of `settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .settings_base import Frozen as _Frozen


class TimeoutConfig(_Frozen):
    """Per-provider timeouts, in seconds."""

    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(60.0, gt=0, description="until the response (or first chunk) starts")
    total_s: float = Field(300.0, gt=0, description="the whole call, streaming included")


class AzureConfig(_Frozen):
    """Azure OpenAI: `api_version` (or "v1" for the /openai/v1 API), model -> deployment names,
    and the auth: an `api-key` from `api_key_env` (key), or Entra ID (entra): a static token
    from `api_key_env`, else refreshing tokens from azure-identity (the `azure` extra), with a
    client secret (`tenant_id`, `client_id`, `client_secret_env`) or DefaultAzureCredential."""

    api_version: str = "2024-10-21"
    deployments: dict[str, str] = Field(default_factory=dict)
    auth: Literal["key", "entra"] = "key"
    tenant_id: str | None = Field(None, description="entra with a client secret: the tenant")
    client_id: str | None = Field(None, description="entra with a client secret: the app")
    client_secret_env: str | None = Field(None, description="entra: env var holding the app's "
                                          "client secret (never the secret)")
    authority_host: str | None = Field(None, description="entra: the Entra authority (default "
                                       "login.microsoftonline.com; sovereign clouds differ)")

    @model_validator(mode="after")
    def _client_secret_names_its_app(self) -> AzureConfig:
        if self.client_secret_env and not (self.tenant_id and self.client_id):
            raise ValueError("`client_secret_env` needs `tenant_id` and `client_id`")
        return self


class ProviderConfig(_Frozen):
    """An upstream deployment: a wire protocol, a base URL and where its API key comes from."""

    type: Literal["openai", "anthropic", "replay", "bedrock", "azure", "gemini",
                  "vertex"] = "openai"
    base_url: str = Field("", description="required, but for bedrock (default: "
                                          "https://bedrock-runtime.{region}.amazonaws.com)")
    region: str | None = Field(None, description="bedrock: the AWS region requests are signed "
                                                  "for (default: from base_url, AWS_REGION, "
                                                  "AWS_DEFAULT_REGION or the profile)")
    profile: str | None = Field(None, description="bedrock: the AWS profile of the shared "
                                                   "config/credentials files (default: "
                                                   "AWS_PROFILE, else default)")
    api_key_env: str | None = Field(None, description="env var holding the key (never the key)")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutConfig = TimeoutConfig()
    max_connections: int = Field(200, gt=0)
    cache_control: Literal["auto", "strip", "pass"] = Field(
        "auto", description="OpenAI-compatible upstreams: forward Anthropic-style `cache_control` "
                            "marks (pass), or remove them (strip); auto passes them to OpenRouter "
                            "only. Anthropic deployments always translate them.")
    azure: AzureConfig = Field(default_factory=AzureConfig,
                               description="`type: azure` only: api-version, deployment names, "
                                           "key or Entra token")

    @model_validator(mode="after")
    def _base_url_needed(self) -> ProviderConfig:
        if not self.base_url and self.type != "bedrock":
            raise ValueError("`base_url` is required (only bedrock has a default)")
        return self


class RetryConfig(_Frozen):
    """Retries of one model before falling back to the next."""

    max_attempts: int = Field(2, ge=1)
    backoff_base_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(4.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    max_retry_after_s: float = Field(10.0, ge=0)


class CooldownConfig(_Frozen):
    """When a deployment leaves rotation (circuit breaker) and for how long."""

    failures: int = Field(3, ge=1)
    cooldown_s: float = Field(30.0, ge=0)


class ResilienceConfig(_Frozen):
    """Fallbacks, retries and cooldowns of the call path."""

    deadline_s: float = Field(120.0, gt=0, description="total budget of one request, all attempts")
    retry: RetryConfig = RetryConfig()
    cooldown: CooldownConfig = CooldownConfig()
    content_policy_fallbacks: tuple[str, ...] = ()
