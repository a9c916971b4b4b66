"""Benchmarks of fem-ms: ``python -m benchmarks.NAME [--quick] [--out PATH]`` (inside scripts/env)."""
