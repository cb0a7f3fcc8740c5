"""Headless Chromium through Playwright, and a loopback HTTP server that serves generated pages from memory.

A `Session` owns one Playwright driver, one Chromium and one `PageServer` on 127.0.0.1; every sample gets
its own browser context (viewport, device scale, touch), so samples share nothing but the process. Pages
are served over real HTTP, so links navigate, history works and ``Back`` is a real back navigation.

`shared()` is the session of this process, started on first use; a builder closes it when it ends unless
someone opened it earlier with ``with keep_shared():`` (tests use that to start Chromium once per module).
Worker processes close theirs when they exit.

Element boxes come from the DOM (`read_elements`): ``getBoundingClientRect`` of every interactive
element and heading, clipped to the viewport, times ``devicePixelRatio``, so they are in screenshot pixels.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update")
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    """$MMREASON_CHROMIUM, else the system Chromium, else None (Playwright's own download)."""
    path = os.environ.get("MMREASON_CHROMIUM") or DEFAULT_CHROMIUM
    return path if os.path.exists(path) else None


# ------------------------------------------------------------------------------------------ server
class PageServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving `put` pages; unknown paths are 404."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        lock = threading.Lock()
        self._pages, self._lock = pages, lock

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                with lock:
                    body = pages.get(self.path.split("?", 1)[0].split("#", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # a request log line per page would drown the progress bar
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mmreason-pages", daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def put(self, path: str, html: str) -> str:
        """Serve `html` at `path` (starting with "/"); returns its URL."""
        with self._lock:
            self._pages[path] = html.encode("utf-8")
        return self.base + path

    def drop(self, prefix: str) -> None:
        """Forget every page under `prefix` (a finished sample's site)."""
        with self._lock:
            for p in [p for p in self._pages if p.startswith(prefix)]:
                del self._pages[p]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# ----------------------------------------------------------------------------------------- session
class Session:
    """One Playwright driver + one headless Chromium + one `PageServer`; `close()` ends all three."""

    def __init__(self, executable: str | None = None, args: tuple[str, ...] = CHROMIUM_ARGS):
        from playwright.sync_api import sync_playwright

        self.server = PageServer()
        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=executable or chromium_path(),
                                                    headless=True, args=list(args))
        except Exception:
            self._pw.stop()
            self.server.close()
            raise
        self.closed = False
        self._contexts: dict[tuple, object] = {}

    @contextlib.contextmanager
    def page(self, width: int, height: int, *, scale: float = 1.0, mobile: bool = False) -> Iterator:
        """A fresh page (its own history and sessionStorage) with a `width` x `height` CSS-pixel viewport.

        Pages of one viewport share a browser context, made once: a context costs ~10x a page. Pages
        share its cookies and localStorage, so generated sites keep their state in sessionStorage.
        """
        spec = (int(width), int(height), float(scale), bool(mobile))
        ctx = self._contexts.get(spec)
        if ctx is None:
            ctx = self._contexts[spec] = self.browser.new_context(
                viewport={"width": spec[0], "height": spec[1]}, device_scale_factor=spec[2], is_mobile=mobile,
                has_touch=mobile, reduced_motion="reduce", locale="en-US", timezone_id="UTC")
        page = ctx.new_page()
        try:
            page.set_default_timeout(15_000)
            yield page
        finally:
            page.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.browser.close()
        finally:
            self._pw.stop()
            self.server.close()


_SHARED: Session | None = None
_KEEP = 0


def shared() -> Session:
    """This process's session, started on first use."""
    global _SHARED
    if _SHARED is None or _SHARED.closed:
        _SHARED = Session()
        _register_exit()
    return _SHARED


def close_shared(*, force: bool = False) -> None:
    """Close this process's session, unless a `keep_shared` block holds it (or `force`)."""
    global _SHARED
    if _SHARED is not None and (force or _KEEP == 0):
        _SHARED.close()
        _SHARED = None


@contextlib.contextmanager
def keep_shared() -> Iterator[Session]:
    """Start the shared session and keep it across builds until the block ends."""
    global _KEEP
    _KEEP += 1
    try:
        yield shared()
    finally:
        _KEEP -= 1
        close_shared()


_EXIT_REGISTERED = False


def _register_exit() -> None:
    # atexit covers the main process; multiprocessing children leave through os._exit, which skips atexit
    # but runs multiprocessing's finalizers.
    global _EXIT_REGISTERED
    if _EXIT_REGISTERED:
        return
    _EXIT_REGISTERED = True
    from multiprocessing import util

    atexit.register(close_shared, force=True)
    util.Finalize(None, close_shared, kwargs={"force": True}, exitpriority=10)


# ------------------------------------------------------------------------------------ observations
_ELEMENTS_JS = """
() => {
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [role=button], [role=link], '
    + '[role=switch], [role=checkbox], [role=radio], [role=tab], [role=option], [role=menuitem], [onclick], '
    + 'h1, h2, h3, [data-text]';
  const W = window.innerWidth, H = window.innerHeight, s = window.devicePixelRatio;
  const tagRole = el => {
    const t = el.tagName.toLowerCase(), type = (el.getAttribute('type') || '').toLowerCase();
    if (t === 'a') return 'link';
    if (t === 'button') return 'button';
    if (t === 'select') return 'combobox';
    if (t === 'textarea') return 'textbox';
    if (t === 'input') return ({checkbox: 'checkbox', radio: 'radio', submit: 'button', button: 'button',
                                range: 'slider', search: 'searchbox'})[type] || 'textbox';
    if (/^h[1-6]$/.test(t)) return 'heading';
    return 'text';
  };
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none' || parseFloat(st.opacity) === 0) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    const x1 = Math.max(r.left, 0), y1 = Math.max(r.top, 0);
    const x2 = Math.min(r.right, W), y2 = Math.min(r.bottom, H);
    if (x2 - x1 < 1 || y2 - y1 < 1 || (x2 - x1) * (y2 - y1) < 0.3 * r.width * r.height) continue;
    const role = el.getAttribute('role') || tagRole(el);
    const interactive = !['heading', 'text'].includes(role) || el.hasAttribute('onclick');
    // covered (e.g. behind a modal): what is on top at the visible centre is neither it nor inside it
    const top = document.elementFromPoint((x1 + x2) / 2, (y1 + y2) / 2);
    const onTop = !!top && (top === el || el.contains(top));
    const text = (el.getAttribute('aria-label') || el.getAttribute('data-text') || el.innerText || el.value
                  || el.getAttribute('placeholder') || el.getAttribute('alt') || el.getAttribute('title')
                  || '').replace(/\\s+/g, ' ').trim();
    out.push({box: [x1 * s, y1 * s, x2 * s, y2 * s], role, text,
              clickable: interactive && onTop && !el.disabled, key: el.getAttribute('data-key'),
              bg: st.backgroundColor,
              checked: el.hasAttribute('aria-checked') ? el.getAttribute('aria-checked') === 'true'
                       : (el.type === 'checkbox' || el.type === 'radio') ? el.checked : null});
  }
  return out;
}
"""


@dataclass(frozen=True)
class Observation:
    """A screenshot and the DOM elements on it (boxes in screenshot pixels), with each element's
    ``data-key`` (the template's handle, None if it has none), computed background colour and checked
    state (switches, checkboxes; None for others)."""

    image: object  # PIL.Image.Image, RGB
    elements: tuple[dict, ...]
    keys: tuple[str | None, ...]
    backgrounds: tuple[str, ...]
    checked: tuple[bool | None, ...]
    url: str

    def index(self, key: str) -> int | None:
        return next((i for i, k in enumerate(self.keys) if k == key), None)


def read_elements(page) -> list[dict]:
    """Elements of the current viewport: ``box`` (screenshot px), ``role``, ``text``, ``clickable``, ``key``,
    ``bg`` (computed background colour), ``checked``."""
    return page.evaluate(_ELEMENTS_JS)


def observe(page) -> Observation:
    """Screenshot the viewport (animations stopped, caret hidden) and read its elements."""
    from PIL import Image

    raw = read_elements(page)
    png = page.screenshot(animations="disabled", caret="hide")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    elements, keys, bgs, checked = [], [], [], []
    for e in raw:
        x1, y1, x2, y2 = (min(max(float(v), 0.0), lim) for v, lim in zip(e["box"], (w, h, w, h)))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        elements.append({"box": [x1, y1, x2, y2], "role": e["role"], "text": e["text"][:200],
                         "clickable": bool(e["clickable"])})
        keys.append(e["key"])
        bgs.append(e["bg"])
        checked.append(e["checked"])
    return Observation(image, tuple(elements), tuple(keys), tuple(bgs), tuple(checked), page.url)


def box_of(page, key: str) -> tuple[float, float, float, float] | None:
    """The CSS-pixel viewport box of the element with ``data-key=key`` (unclipped), or None."""
    r = page.evaluate("k => { const e = document.querySelector(`[data-key=\"${k}\"]`); if (!e) return null;"
                      " const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }",
                      key)
    return None if r is None else tuple(float(v) for v in r)
