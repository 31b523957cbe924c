"""The HTTP server: an ASGI app built by `create_app(settings)`, with OpenAI-shaped errors."""
