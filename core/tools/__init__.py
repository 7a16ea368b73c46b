"""Tooling that is not part of a run: `bench` (the lecture's pipeline against the engine's, on the same photos)."""
