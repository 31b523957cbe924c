"""Test helpers for llmroute: a real-HTTP fake upstream LLM server (see `testing.upstream`)."""
