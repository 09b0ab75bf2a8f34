"""``jupyter codexmax scripted-server``: the scripted model server in the foreground."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..testing.script import load_script
from ..testing.server import ScriptedModelServer
from ..text import plural

if TYPE_CHECKING:
    from .app import ScriptedServerApp


def serve(app: ScriptedServerApp, script_path: str | None) -> int:
    script = load_script(script_path, name=script_path) if script_path else load_script([])

    def say(message: str) -> None:
        print(f"scripted-server: {message}", file=sys.stderr, flush=True)

    try:
        server = ScriptedModelServer(
            script,
            host=app.host,
            port=app.port,
            api_key=app.require_key or None,
            log=None if app.quiet else say,
        )
    except OSError as exc:
        from ..errors import ConfigError

        raise ConfigError(f"cannot listen on {app.host}:{app.port}: {exc.strerror or exc}") from exc

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"jupyter-codexmax scripted model server (not a model) at {server.base_url}\n"
        f"script: {script_path or 'none'} ({plural(script.remaining, 'step')}); Ctrl-C to stop",
        flush=True,
    )
    if app.url_file:
        tmp = Path(app.url_file + ".tmp")
        tmp.write_text(server.base_url + "\n", encoding="utf-8")
        os.replace(tmp, app.url_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if app.url_file:
            Path(app.url_file).unlink(missing_ok=True)
    return 0
