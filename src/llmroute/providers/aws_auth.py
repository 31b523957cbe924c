"""AWS credentials and SigV4 signing through botocore (the `bedrock` extra).

Credentials come from botocore's full chain, read against the environment mapping the gateway was
given (not only `os.environ`): the `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
`AWS_SESSION_TOKEN` variables, then the shared config and credentials files (`AWS_CONFIG_FILE`,
`AWS_SHARED_CREDENTIALS_FILE`, the entry's `profile` or `AWS_PROFILE`) with their static keys,
`credential_process`, SSO and assume-role profiles, then the container (ECS / EKS pod identity)
and instance metadata endpoints. Temporary credentials are botocore `RefreshableCredentials`:
when botocore says they need refreshing (15 minutes before they expire), the refresh, which may
run a process or call an endpoint, runs in a worker thread, never on the event loop.

This module imports botocore: import it only when `botocore_missing()` is False.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    ConfigChainFactory,
    ConfigValueStore,
)
from botocore.credentials import (
    ContainerProvider,
    CredentialResolver,
    Credentials,
    EnvProvider,
    RefreshableCredentials,
    create_credential_resolver,
)
from botocore.exceptions import BotoCoreError
from botocore.session import Session

SERVICE = "bedrock"
#: Hop to a worker thread this long before expiry: a little before botocore's own advisory
#: refresh (15 minutes), so that a refresh never starts on the event loop.
EARLY_S = 16 * 60


@dataclass(frozen=True)
class Frozen:
    """One consistent snapshot of credentials (botocore's ReadOnlyCredentials)."""

    access_key: str
    secret_key: str
    token: str | None

    def __repr__(self) -> str:  # never print the secret
        return f"Frozen(access_key={self.access_key!r}, secret_key=<hidden>)"


class CredentialError(Exception):
    """The chain found no credentials, or a provider in it failed (its message names no
    secret: only botocore's exception type)."""


class _ReadOnly(Protocol):
    """botocore's ReadOnlyCredentials (a namedtuple)."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


class _Loaded(Protocol):
    """botocore's Credentials or RefreshableCredentials."""

    def get_frozen_credentials(self) -> _ReadOnly: ...


def session_for(environ: Mapping[str, str], profile: str | None) -> Session:
    """A botocore session whose configuration (config file paths, profile, region, metadata
    settings) is read from `environ` instead of `os.environ`; `profile` overrides AWS_PROFILE."""
    session = Session()
    chains = ConfigChainFactory(session=session, environ=environ)
    mapping = {name: chains.create_config_chain(instance_name=name, env_var_names=spec[1],
                                                config_property_names=spec[0], default=spec[2],
                                                conversion_func=spec[3])
               for name, spec in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()}
    session.register_component("config_store", ConfigValueStore(mapping=mapping))
    if profile:
        session.set_config_variable("profile", profile)
    return session


def profile_region(session: Session) -> str | None:
    """The region the session's environment or profile names (AWS_REGION, the profile's
    `region`), if any."""
    try:
        region = session.get_config_variable("region")
    except BotoCoreError:  # e.g. a profile named but absent from the files
        return None
    return str(region) if region else None


def resolver_for(session: Session, environ: Mapping[str, str]) -> CredentialResolver:
    """botocore's default chain, its environment and container providers reading `environ`."""
    resolver = create_credential_resolver(session)
    swapped = {"env": EnvProvider(environ=environ),
               "container-role": ContainerProvider(environ=environ)}
    resolver.providers = [swapped.get(p.METHOD, p) for p in resolver.providers]
    return resolver


def _load(resolver: CredentialResolver) -> _Loaded:
    """Run the chain (blocking: files, processes, metadata endpoints)."""
    try:
        found = resolver.load_credentials()
    except BotoCoreError as exc:
        raise CredentialError(f"the AWS credential chain failed ({type(exc).__name__})") from None
    if found is None:
        raise CredentialError("no AWS credentials found (AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, shared files, profile, SSO, "
                              "credential_process, container or instance metadata)")
    return cast(_Loaded, found)


def _freeze(loaded: _Loaded) -> Frozen:
    """The current snapshot; for refreshable credentials this may refresh them (blocking)."""
    try:
        raw = loaded.get_frozen_credentials()
    except (BotoCoreError, RuntimeError) as exc:  # RuntimeError: refreshed, still expired
        raise CredentialError(f"refreshing AWS credentials failed ({type(exc).__name__})") \
            from None
    return Frozen(raw.access_key, raw.secret_key, raw.token or None)


def _needs_refresh(loaded: _Loaded) -> bool:
    return isinstance(loaded, RefreshableCredentials) and bool(loaded.refresh_needed(EARLY_S))


class CredentialSource:
    """The chain's credentials for one provider: resolved on first use, refreshed as botocore
    says, every blocking step in a worker thread."""

    def __init__(self, resolver: CredentialResolver):
        self._resolver = resolver
        self._loaded: _Loaded | None = None
        self._lock = asyncio.Lock()

    async def current(self) -> Frozen:
        """Credentials valid now; CredentialError when there are none."""
        loaded = self._loaded
        if loaded is not None and not _needs_refresh(loaded):
            return _freeze(loaded)  # no refresh due for minutes: botocore reads its fields
        async with self._lock:  # one resolution or refresh at a time, off the loop
            return await asyncio.to_thread(self._resolve_and_freeze)

    def _resolve_and_freeze(self) -> Frozen:
        if self._loaded is None:
            self._loaded = _load(self._resolver)
        return _freeze(self._loaded)


def sign(method: str, url: str, headers: Mapping[str, str], payload: bytes,
         credentials: Frozen, region: str) -> dict[str, str]:
    """The headers botocore's SigV4Auth adds to the request (`x-amz-date`, `authorization`,
    `x-amz-security-token` for temporary credentials), names in lower case. `url` is as sent
    (its path already percent-encoded)."""
    request = AWSRequest(method=method, url=url, data=payload, headers=dict(headers))
    signer = SigV4Auth(Credentials(credentials.access_key, credentials.secret_key,
                                   credentials.token), SERVICE, region)
    signer.add_auth(request)
    sent = {str(k).lower() for k in headers}
    return {str(k).lower(): str(v) for k, v in request.headers.items()
            if str(k).lower() not in sent}


class Signer:
    """Signs one provider's requests for its region with the chain's current credentials."""

    def __init__(self, environ: Mapping[str, str], profile: str | None, region: str | None):
        """CredentialError when the chain cannot even be set up (a profile not in the files)."""
        session = session_for(environ, profile)
        self.region = region or profile_region(session)
        try:
            self.credentials = CredentialSource(resolver_for(session, environ))
        except BotoCoreError as exc:
            raise CredentialError(f"the AWS credential chain cannot be set up "
                                  f"({type(exc).__name__})") from None

    async def headers(self, url: str, headers: Mapping[str, str], payload: bytes,
                      region: str) -> tuple[dict[str, str], Frozen]:
        """The signature headers of a POST to `url`, and the credentials that signed it."""
        credentials = await self.credentials.current()
        return sign("POST", url, headers, payload, credentials, region), credentials
