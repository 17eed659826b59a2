"""Browser tests: Debian's chromium, driven by Playwright, against the console on a local stack.

One stack per session (free ports, Ana's demo journey played), started on first use and stopped
(emulator state reset) when the last browser test is done, so the e2e stack can start after it.
``console/dist`` is brought up to date by ``make console/dist`` first.

Signed-in journeys sign in through the console's own form as the stack's demo staff users
(``devstack/cognito.py``: store@, marketing@, privacy@, admin@demo.local).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.cognito import DEMO_PASSWORD
from devstack.demo import play
from devstack.stack import LocalStack
from devstack.template import ROOT
from tests.support.stacks import session_stack, stop_after_folder

BROWSER_DIR = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

TABLET = {"width": 1024, "height": 768}
_started: list[LocalStack] = []


def _stop(stack: LocalStack) -> None:
    stack.stop()
    # moto's backends live in this process: reset them so the next stack provisions afresh.
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    stop_after_folder(BROWSER_DIR, _started, nextitem, _stop)


def _ensure_built() -> None:
    """make rebuilds console/dist when a source is newer (a no-op otherwise)."""
    subprocess.run(["make", "-s", "console/dist"], cwd=ROOT, check=True)  # noqa: S607 - the project's make


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    _ensure_built()
    with session_stack(tmp_path_factory.mktemp("devstack-browser"), _started, _stop) as stack:
        _, problems = play(stack)
        assert not problems, problems
        stack.wait_quiet(timeout=90)
        yield stack


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def console_url(console_stack: LocalStack) -> str:
    return f"{console_stack.api_url}/console/"


def new_page(chromium: Any, locale: str) -> Any:
    context = chromium.new_context(locale=locale, viewport=TABLET)
    context.set_default_timeout(20_000)
    return context.new_page()


@pytest.fixture
def page_es(chromium: Any) -> Iterator[Any]:
    """A tablet-sized page whose browser speaks Spanish (a Madrid store's tablet)."""
    page = new_page(chromium, "es-ES")
    yield page
    page.context.close()


@pytest.fixture
def page_en(chromium: Any) -> Iterator[Any]:
    page = new_page(chromium, "en-GB")
    yield page
    page.context.close()


@pytest.fixture
def sign_in(console_url: str, page_en: Any) -> Any:
    """sign_in(email) -> the page, signed in through the sign-in form (English)."""

    def _sign_in(email: str) -> Any:
        page_en.goto(console_url)
        page_en.get_by_label("Email").fill(email)
        page_en.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
        page_en.get_by_role("button", name="Sign in").click()
        page_en.get_by_role("button", name="Sign out").wait_for()
        return page_en

    return _sign_in


def screenshot(page: Any, name: str) -> None:
    """Save docs/console/<name>.png when CONSOLE_SCREENSHOTS is set (how the docs' images are made)."""
    if os.environ.get("CONSOLE_SCREENSHOTS"):
        out = ROOT / "docs" / "console"
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
