"""Tests of the control plane (shared state, limits, alerts, experiments)."""
