"""The browser, its contexts, and what the page's network events show."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Request, Response

from scopematrix.flow.records import StorageState


class Contexts:
    """One browser, started on first use (and again if it died), and fresh contexts in it."""

    def __init__(self, factory: Callable[[], Awaitable[Browser]], timeout_ms: float) -> None:
        self._factory = factory
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()
        self._timeout_ms = timeout_ms
        self.on_restart: Callable[[], None] = lambda: None  # contexts of a dead browser are gone with it

    async def browser(self) -> Browser:
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                self.on_restart()
                self._browser = await self._factory()
            return self._browser

    async def new(self, state: StorageState | None, video_dir: Path | None = None) -> BrowserContext:
        browser = await self.browser()
        context = await browser.new_context(
            storage_state=state,  # type: ignore[arg-type]
            viewport={"width": 1000, "height": 760},
            record_video_dir=video_dir,
        )
        context.set_default_timeout(self._timeout_ms)
        context.set_default_navigation_timeout(self._timeout_ms)
        return context

    async def close(self) -> None:
        """Closes the browser, and with it every context at once."""
        if self._browser is not None and self._browser.is_connected():
            await self._browser.close()


@dataclass
class WalkWatch:
    """What the page's network events showed during one walk: main-frame navigations, and what became of
    each of the page's own documents (its HTTP status, or why it never arrived whole)."""

    navigations: int = 0
    documents: list[int | str] = field(default_factory=list)

    def on_response(self, response: Response) -> None:
        if document_response(response):
            self.documents.append(response.status)

    def on_failed(self, request: Request) -> None:
        # (resource type first: a service worker's request has no frame)
        if request.resource_type == "document" and request.frame.parent_frame is None:
            self.documents.append(request.failure or "failed")

    def outage(self) -> str | None:
        """The page's last document was a server error or never arrived whole: the target's trouble."""
        last = self.documents[-1] if self.documents else None
        if isinstance(last, int):
            return f"HTTP {last} from the target" if last >= 500 else None
        return f"the connection failed ({last})" if last is not None else None


class Navigations:
    """A request listener that counts the page's main-frame document navigations (redirects included)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: Request) -> None:
        if main_frame_navigation(request):
            self.count += 1


def main_frame_navigation(request: Request) -> bool:
    """A document navigation of the page itself. Asked in this order: a service worker's request has no
    frame, and asking for it raises."""
    return request.is_navigation_request() and request.frame.parent_frame is None


def document_response(response: Response) -> bool:
    """A response to the page's own document (resource type first: a service worker's response has no frame)."""
    return response.request.resource_type == "document" and response.frame.parent_frame is None
