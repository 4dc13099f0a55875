"""Model tests never reach the hub."""

import huggingface_hub.constants
import pytest


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch):
    """HF_HUB_OFFLINE is read when huggingface_hub is imported; set it where it is looked up."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
