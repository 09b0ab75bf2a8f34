"""A real JupyterLab server and Debian's Chromium, and helpers that drive a notebook in it.

Every wait is for a state (the server's API answering, the kernel idle, a cell's prompt
showing its execution count, an output's text), never a fixed sleep. The browser is the one
found on PATH as ``chromium`` (Debian's package; ``./dev test`` installs it where it can):
no tool ever downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Playwright

#: Chromium flags that work on these machines (shared/ENVIRONMENT.md, "Browser tests").
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Seconds to wait for JupyterLab's first start (later starts take about 3 s).
LAB_START_TIMEOUT = 120.0

#: Milliseconds for a state in the page (the first load after an install can be slow).
STATE_TIMEOUT = 60_000

_ENV_PREFIXES = ("OPENAI_", "CODEXMAX_", "AZURE_OPENAI_", "JUPYTER", "JPY_", "IPYTHON")
_PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")

INSTALL_HINT = (
    "`./dev test` installs Debian's chromium when run as root with apt-get "
    "(unless CODEXMAX_NO_BROWSER_INSTALL is set); or `apt-get install chromium`"
)


def find_chromium() -> str | None:
    """Debian's Chromium on PATH (or the command ``CODEXMAX_CHROMIUM`` names), if any."""
    return shutil.which(os.environ.get("CODEXMAX_CHROMIUM") or "chromium")


#: The JupyterLab extension, as `./dev build` builds it (and links it into the .venv).
LABEXTENSION = Path(__file__).resolve().parents[2] / "jupyter_codexmax" / "labextension"
EXTENSION_NAME = "jupyter-codexmax"


def why_no_extension() -> str | None:
    """Why the tests of the JupyterLab extension cannot run here (None when they can)."""
    if not (LABEXTENSION / "package.json").is_file():
        return (
            "the JupyterLab extension is not built: `./dev build` (or `./dev test`) builds it "
            "with npm"
        )
    import jupyter_core.paths

    found = [
        Path(folder) / "labextensions" / EXTENSION_NAME
        for folder in jupyter_core.paths.jupyter_path()
        if (Path(folder) / "labextensions" / EXTENSION_NAME / "package.json").is_file()
    ]
    if not found:
        return (
            "the JupyterLab extension is built but not installed in this environment: "
            "`./dev build` links it into .venv"
        )
    return None


def why_no_browser() -> str | None:
    """Why browser tests cannot run here (None when they can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python playwright is not installed (it is in the test extras: '.[test]')"
    if find_chromium() is None:
        named = os.environ.get("CODEXMAX_CHROMIUM")
        if named:
            return f"{named} (CODEXMAX_CHROMIUM) not found"
        return f"chromium not found on PATH: {INSTALL_HINT}"
    return None


# -- the server ------------------------------------------------------------------------------


def lab_environment(root: Path, *, model_url: str, api_key: str) -> dict[str, str]:
    """The server's environment, which its kernels inherit: the user's Jupyter, IPython,
    model and proxy settings left out; the model is the scripted server at ``model_url``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES) and k not in _PROXIES
    }
    env.update(
        HOME=str(root / "home"),
        JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
        JUPYTER_DATA_DIR=str(root / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(root / "ipython"),
        OPENAI_BASE_URL=model_url,
        OPENAI_API_KEY=api_key,
        CODEXMAX_TOKENIZER="estimate",
        NO_PROXY="127.0.0.1,localhost",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str  # ends with /
    token: str
    root: Path  # the server's root folder: notebooks live here
    pid: int
    log: Path

    def api(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        """Call the server's REST API (``path`` after ``/api/``); the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}api/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def notebook_url(self, name: str) -> str:
        """The notebook opened alone in a fresh workspace (``reset``: nothing else reopens)."""
        return f"{self.url}lab/tree/{quote(name)}?reset&token={self.token}"

    def reset(self) -> None:
        """Shut every kernel down and empty the root folder (between tests)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")
        for path in self.root.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def saved(self, name: str) -> dict[str, Any]:
        """The notebook as the server has it on disk."""
        answer: dict[str, Any] = self.api(f"contents/{quote(name)}?content=1")
        return dict(answer["content"])


@contextmanager
def jupyter_lab(
    root: Path,
    env: dict[str, str],
    *,
    timeout: float = LAB_START_TIMEOUT,
    extension: bool = True,
) -> Iterator[Lab]:
    """Start ``jupyter lab`` on loopback in ``root / "notebooks"``; stop it by its pid at the
    end. Ready when its API answers (its port is read from the server's own info file).
    ``extension=False``: our JupyterLab extension is disabled there (JupyterLab as it is
    without it: the kernel has no bridge)."""
    notebooks = root / "notebooks"
    notebooks.mkdir(parents=True, exist_ok=True)
    _quiet_settings(Path(env["JUPYTER_CONFIG_DIR"]))
    if not extension:
        labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        page_config = {"disabledExtensions": {EXTENSION_NAME: True}}
        (labconfig / "page_config.json").write_text(json.dumps(page_config))
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    token = secrets.token_hex(16)
    log_path = root / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        "--port=0",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.news_url=None",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel states to wait on
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=notebooks, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        lab = _wait_ready(
            process, runtime / f"jpserver-{process.pid}.json", token, log_path, timeout
        )
        yield lab
    finally:
        _stop(process)


def _quiet_settings(config: Path) -> None:
    """No "get notified about Jupyter news?" toast over the page (``news_url=None`` alone
    does not stop it: JupyterLab 4.6 asks while ``fetchNews`` is "none")."""
    folder = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"fetchNews": "false", "checkForUpdates": False}
    (folder / "notification.jupyterlab-settings").write_text(json.dumps(settings))


def _wait_ready(
    process: subprocess.Popen[bytes], info: Path, token: str, log: Path, timeout: float
) -> Lab:
    deadline = time.monotonic() + timeout
    lab: Lab | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with status {process.returncode} before it was ready; "
                f"its log ({log}) ends:\n{_tail(log)}"
            )
        if lab is None and info.is_file():
            try:
                details = json.loads(info.read_text())
            except json.JSONDecodeError:  # being written
                details = None
            if details:
                url = f"http://127.0.0.1:{details['port']}{details['base_url']}"
                root = Path(details["root_dir"])
                lab = Lab(url=url, token=token, root=root, pid=process.pid, log=log)
        if lab is not None:
            try:
                lab.api("status")
                return lab
            except (urllib.error.URLError, ConnectionError):
                pass
        time.sleep(0.1)  # polling interval, not a wait for a state
    raise RuntimeError(
        f"jupyter lab was not ready after {timeout:.0f} s; its log ({log}) ends:\n{_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by pid (the server shuts its kernels down), SIGKILL if it hangs."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the browser -----------------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with the flags that work here and a fresh profile
    (Playwright's ``launch`` makes a new temporary user-data dir each time)."""
    executable = find_chromium()
    if executable is None:
        raise RuntimeError(why_no_browser() or "chromium not found")
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
    )


def new_page(browser: Browser) -> Page:
    """A page in a fresh context, tall enough for a working panel to fit on screen."""
    context = browser.new_context(viewport={"width": 1280, "height": 1500})
    context.set_default_timeout(STATE_TIMEOUT)
    return context.new_page()


# -- driving a notebook ----------------------------------------------------------------------


#: The kernel of the notebook at ``path`` as its page sees it: "connected:idle", "no kernel",
#: or null while the notebook is not open. Needs ``window.jupyterapp`` (expose_app_in_browser).
_KERNEL_STATE = """(path) => {
    const app = window.jupyterapp;
    if (!app) return null;
    for (const widget of app.shell.widgets("main")) {
        if (widget.context && widget.context.path === path) {
            const kernel = widget.sessionContext.session?.kernel;
            return kernel ? `${kernel.connectionStatus}:${kernel.status}` : "no kernel";
        }
    }
    return null;
}"""


class Notebook:
    """One notebook open in JupyterLab, driven as a person would (keyboard and clicks)."""

    def __init__(self, page: Page, lab: Lab, name: str) -> None:
        self.page = page
        self.lab = lab
        self.name = name
        self.kernel_dialogs = 0  # times JupyterLab asked which kernel (answered "Select")

    @property
    def panel(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible")

    def open(self) -> Notebook:
        """Load JupyterLab with this notebook alone, and wait for its kernel to be idle."""
        self.page.goto(self.lab.notebook_url(self.name))
        self._wait_kernel()
        return self

    def reload(self) -> Notebook:
        self.page.reload()
        self._wait_kernel()
        return self

    def kernel_state(self) -> str | None:
        state = self.page.evaluate(_KERNEL_STATE, self.name)
        return None if state is None else str(state)

    def wait_idle(self) -> None:
        """The page's connection to the kernel is up, and the kernel idle."""
        self.page.wait_for_function(
            f"(path) => ({_KERNEL_STATE})(path) === 'connected:idle'", arg=self.name
        )

    def _wait_kernel(self) -> None:
        # JupyterLab sometimes asks which kernel to start although the notebook names one
        # (when the page's kernelspecs arrive after the notebook): answer as a person would.
        dialog = self.page.locator(".jp-Dialog").filter(has_text="Select Kernel")
        for _ in range(3):
            self.page.wait_for_function(
                f"(path) => ({_KERNEL_STATE})(path) === 'connected:idle' || "
                "document.querySelector('.jp-Dialog') !== null",
                arg=self.name,
            )
            if not dialog.count():
                break
            self.kernel_dialogs += 1
            dialog.locator(".jp-mod-accept").click()
            dialog.wait_for(state="detached")
        self.wait_idle()
        self.panel.locator(".jp-Cell").first.wait_for()
        # The file browser has listed the notebook: the page has settled.
        self.page.locator(".jp-DirListing-item").filter(has_text=self.name).first.wait_for()

    def cell(self, index: int) -> Locator:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-Cell-outputArea")

    def set_cell(self, index: int, source: str) -> None:
        """Replace a cell's text by typing it in its editor."""
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.press("Backspace")
        self.page.keyboard.insert_text(source)

    def run_cell(self, index: int) -> None:
        """Run a cell in place (Ctrl+Enter), without waiting for it."""
        self.cell(index).locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("ControlOrMeta+Enter")

    def interrupt(self) -> None:
        """Interrupt the kernel with the notebook toolbar's button (■)."""
        self.panel.locator('.jp-Toolbar [data-command="notebook:interrupt-kernel"]').click()

    def wait_ran(self, index: int) -> str:
        """Wait for a cell's run to end (its prompt shows a number); returns the prompt."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        prompt.filter(has_text=re.compile(r"\[\d+\]")).wait_for()
        return prompt.inner_text()

    def wait_output(self, index: int, text: str | re.Pattern[str]) -> Locator:
        """Wait for a cell's output to show ``text``; returns that output."""
        shown = self.output(index).locator(".jp-OutputArea-output").filter(has_text=text)
        shown.first.wait_for()
        return shown.first

    def save(self, done: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Save (Ctrl+S) and wait until the file on disk satisfies ``done`` (and the tab is
        no longer marked dirty)."""
        self.page.locator(".lm-TabBar-tab.jp-mod-current").first.click()
        self.page.keyboard.press("ControlOrMeta+s")
        self.page.locator(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").first.wait_for()
        if done is None:
            return
        deadline = time.monotonic() + STATE_TIMEOUT / 1000
        while not done(self.lab.saved(self.name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} was not saved as expected")
            time.sleep(0.1)  # polling interval
