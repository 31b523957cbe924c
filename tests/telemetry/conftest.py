"""The integration tests' fixtures (a module's FakeUpstream, `up`, `serve`), for the telemetry
tests that drive a real gateway."""

from integration.conftest import serve, stopping, up, upstream  # noqa: F401  (fixtures)
