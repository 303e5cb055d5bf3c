"""Fixtures of the hosted replicators' tests: the local fake of the OpenAI and Gemini APIs, and the
environment that points the official clients at it."""

from __future__ import annotations

import pytest
from fake_image_api import FakeImageAPI

OPENAI_KEY = "sk-test-SECRET-0123456789abcdef"
GEMINI_KEY = "AIzaTEST-SECRET-fedcba9876543210"


@pytest.fixture
def fake():
    with FakeImageAPI(openai_key=OPENAI_KEY, gemini_key=GEMINI_KEY) as api:
        yield api


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fake: FakeImageAPI) -> FakeImageAPI:
    """Both clients pointed at the fake, with keys only in the environment."""
    for name in (
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_ADMIN_KEY",
        "OPENAI_CUSTOM_HEADERS",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    return fake
