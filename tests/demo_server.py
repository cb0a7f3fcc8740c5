"""Serving a demo on 127.0.0.1 for the demo tests: in this process (`serve_demo`) or as the `mmreason demo`
command a user runs, waited for until it answers (`wait_up`)."""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
import urllib.request

from mmreason.demos import add_serve_args, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_demo(demo) -> str:
    """Launch `demo` (a built ``gr.Blocks``) without blocking, as `mmreason demo` would; its URL."""
    parser = argparse.ArgumentParser()
    add_serve_args(parser)
    args = parser.parse_args(["--port", str(free_port())])
    serve(demo, args, block=False)
    return f"http://127.0.0.1:{args.port}/"


def wait_up(url: str, proc: subprocess.Popen, seconds: float) -> None:
    """Return once `url` answers; fail with the command's stderr if `proc` exits first, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited: {proc.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the demo did not come up")
