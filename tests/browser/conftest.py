"""Fixtures for browser tests: one JupyterLab server and one Chromium for all of them.

- ``lab``: a real ``jupyter lab`` on loopback, in its own temporary folders, whose kernels
  talk to the scripted model server (the session's ``scripted_server``: load a script in
  the test), with our JupyterLab extension (skips, saying why, where it is not built);
  its kernels shut down and its folder emptied after each test;
- ``plain_lab``: the same with our extension disabled (the kernel has no bridge);
- ``page``: a fresh browser context and page in Debian's Chromium.

The server and the browser are package-scoped: started by the first browser test, stopped
after the last, so the rest of the suite runs without them. Without Chromium (or
Playwright) the tests skip, saying why and how to get it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browser.lab import (
    Lab,
    jupyter_lab,
    lab_environment,
    launch_chromium,
    new_page,
    why_no_browser,
    why_no_extension,
)
from browser.screenshots import API_KEY, SCREENSHOTS
from jupyter_codexmax.testing import ScriptedModelServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def _lab_server(
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
    _scripted_server_session: ScriptedModelServer,
) -> Iterator[Lab]:
    # Started after the browser, so that a missing browser skips before anything starts.
    reason = why_no_extension()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    env = lab_environment(root, model_url=_scripted_server_session.base_url, api_key=API_KEY)
    with jupyter_lab(root, env) as server:
        yield server


@pytest.fixture(scope="package")
def _plain_lab_server(
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
    _scripted_server_session: ScriptedModelServer,
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("plain-lab")
    env = lab_environment(root, model_url=_scripted_server_session.base_url, api_key=API_KEY)
    with jupyter_lab(root, env, extension=False) as server:
        yield server


@pytest.fixture
def lab(_lab_server: Lab) -> Iterator[Lab]:
    """The JupyterLab server with our extension, its root folder empty; its kernels shut
    down after the test."""
    yield _lab_server
    _lab_server.reset()


@pytest.fixture
def plain_lab(_plain_lab_server: Lab) -> Iterator[Lab]:
    """A JupyterLab server with our extension disabled: the kernel has no bridge, as in
    any other frontend."""
    yield _plain_lab_server
    _plain_lab_server.reset()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context and page; on a failure, the page as it was goes to
    ``build/screenshots/<test name>/failure.png``."""
    page = new_page(browser)
    yield page
    if request.node.stash.get(_FAILED, False):
        folder = SCREENSHOTS / str(request.node.name)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "failure.png"))
        _WRITTEN.append(folder)
    page.context.close()


_WRITTEN: list[Path] = []


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """``build/screenshots/<test name>/``: where a test writes its pictures (listed at the
    end of the run)."""
    folder = SCREENSHOTS / str(request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    _WRITTEN.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in _WRITTEN:
        pngs = sorted(folder.glob("*.png"))
        if pngs:
            terminalreporter.write_line(f"screenshots: {folder} ({len(pngs)} PNG files)")
