"""A classic chart repository on loopback, for the local test bed: one chart packaged and
indexed, served over plain http until the block ends (what `spec.repository: http://...`
and Flux's HelmRepository point at in the tests and the bench)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def chart_repository(helm: Path, chart: Path, directory: Path) -> Iterator[str]:
    """`chart` (a chart directory) packaged into `directory` and served; yields its URL."""
    subprocess.run([str(helm), "package", str(chart), "-d", str(directory)], check=True, timeout=120)
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([str(helm), "repo", "index", str(directory), "--url", url], check=True, timeout=120)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
