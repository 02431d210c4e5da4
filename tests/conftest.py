"""Test-wide setup: 8 simulated CPU devices for the sharding tests (set before jax is imported),
no hub access, and small shared fixtures."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402

from openai_server import OpenAIServer  # noqa: E402


@pytest.fixture
def openai_server():
    """Starts local OpenAI-compatible servers (tests/openai_server.py): `openai_server(answer,
    faults, latency=...)` returns a running OpenAIServer, stopped when the test ends."""
    servers = []

    def start(answer, faults=(), **options) -> OpenAIServer:
        server = OpenAIServer(answer, faults, **options).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)
