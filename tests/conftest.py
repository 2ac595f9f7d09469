"""Shared pytest set-up.

Each area keeps its fixtures in its own plugin module beside this file
(``fixtures_<area>.py``), listed in ``pytest_plugins`` below, so that areas do
not edit each other's fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / ".cache" / "fixtures"

pytest_plugins: list[str] = ["fixtures_tflite", "fixtures_codec", "fixtures_models", "fixtures_session"]

# Hypothesis: deterministic in CI (derandomize) and bounded in time; the
# "dev" profile explores more. Select with HYPOTHESIS_PROFILE.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Directory of the real trained models fetched by tests/fixtures/fetch.py."""
    if not (FIXTURES / "mediapipe" / ".complete").exists() or not (FIXTURES / "rapidocr" / ".complete").exists():
        import subprocess
        import sys

        subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "fetch.py")], check=True)
    return FIXTURES
