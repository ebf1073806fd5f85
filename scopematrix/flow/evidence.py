"""A walk's evidence: screenshots (secret fields masked), the HTML of an unknown screen, the trace and the
video, each redacted of the run's secrets before it is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from scopematrix.model import Capture
from scopematrix.pages.base import BasePage
from scopematrix.pages.screens import screen_of
from scopematrix.redact import Redactor, redact_zip


class Evidence:
    """Writes evidence under the run folder; every path it returns is relative to it."""

    def __init__(self, run_dir: Path, redact: Redactor) -> None:
        self.run_dir = run_dir
        self.redact = redact

    async def capture(self, obj: BasePage | None, page: Page, folder: Path | None, captures: list[Capture]) -> None:
        if folder is None:
            return
        screen = screen_of(obj)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(captures) + 1:02d}-{screen.value}.png"
        try:
            mask = await (obj or BasePage(page)).masks()
            await page.screenshot(path=str(path), mask=mask, animations="disabled")
        except PlaywrightError:
            return
        captures.append(Capture(screen, str(path.relative_to(self.run_dir))))

    async def save_html(self, page: Page, folder: Path | None) -> str:
        if folder is None:
            return ""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "unrecognized.html"
        try:
            path.write_text(self.redact(await page.content()), encoding="utf-8")
        except PlaywrightError:
            return ""
        return str(path.relative_to(self.run_dir))

    async def stop_tracing(self, context: BrowserContext, folder: Path, keep: bool) -> None:
        try:
            if keep:
                folder.mkdir(parents=True, exist_ok=True)
                await context.tracing.stop(path=str(folder / "trace.zip"))
                redact_zip(folder / "trace.zip", self.redact)  # the redirect URL in it carries the code
            else:
                await context.tracing.stop()
        except PlaywrightError:
            pass

    @staticmethod
    async def keep_video(page: Page, video_dir: Path, keep: bool) -> None:
        """The walk's video as video.webm beside its screenshots (a walk after login: no credential in it)."""
        video = page.video
        try:
            if video is not None and keep:
                await video.save_as(video_dir.parent / "video.webm")
            if video is not None:
                await video.delete()
        except PlaywrightError:
            pass
        shutil.rmtree(video_dir, ignore_errors=True)
