"""A cell's test result, published: its verdict, its Allure labels and evidence, and pytest-playwright's
artifacts (--tracing, --video, --screenshot) in --output."""

from __future__ import annotations

import shutil
from pathlib import Path

import allure
import pytest

from scopematrix.flow import attempt_folder
from scopematrix.model import CellResult, Outcome
from scopematrix.plugin.state import STATE, opt


def record_allure(config: pytest.Config, result: CellResult) -> None:
    """Allure labels and evidence for a cell; called from the test body, so the title sticks and the
    attachments belong to the test, not to a fixture's set-up."""
    run_dir = config.stash[STATE].run_dir
    allure.dynamic.title(f"{result.user} × {result.scope_set} on {result.account}: {result.outcome.label}")
    allure.dynamic.parent_suite(result.account)
    allure.dynamic.suite(result.user)
    allure.dynamic.sub_suite(result.scope_set)
    allure.dynamic.tag(result.outcome.value)
    allure.dynamic.story(result.outcome.label)
    allure.dynamic.feature(result.account)
    decisive = result.decisive
    if decisive is not None and (run_dir / decisive.path).is_file():
        allure.attach.file(str(run_dir / decisive.path), name=f"decisive screen: {decisive.screen.value}",
                           attachment_type=allure.attachment_type.PNG)  # fmt: skip
    if result.html_path and (run_dir / result.html_path).is_file():
        allure.attach.file(str(run_dir / result.html_path), name="unknown screen (HTML)",
                           attachment_type=allure.attachment_type.HTML)  # fmt: skip
    if result.trace_path and (run_dir / result.trace_path).is_file():
        allure.attach.file(str(run_dir / result.trace_path), name="Playwright trace", extension="zip")
    d = result.diagnosis
    if d is not None:
        lines = [d.summary, f"blocking scopes: {', '.join(d.blocking_scopes) or '-'}; attribution: {d.attribution}"]
        lines += [f"{f.scope}: {f.level}-level {f.hint}".rstrip() for f in d.findings]
        verdict = {True: "verified", False: "does not work", None: "not probed"}
        lines += [f"fix ({r.kind}, {verdict[r.verified]}): {r.summary}" for r in d.remedies]
        allure.attach("\n".join(lines), name="diagnosis", attachment_type=allure.attachment_type.TEXT)


class InfrastructureTrouble(Exception):
    """A cell ended in error or on an unknown screen: shown as broken, not as a product failure."""


def check_cell(result: CellResult) -> None:
    """The test's verdict is the cell's: a regression fails, infrastructure trouble is broken."""
    detail = f"{result.cell_id}: {result.heading} - {result.message}"
    if result.outcome is Outcome.UNRECOGNIZED and not result.matches_expectation:
        raise InfrastructureTrouble(f"unknown screen: {detail}")
    if result.outcome.infrastructure and not result.matches_expectation:
        raise InfrastructureTrouble(f"infrastructure: {result.outcome.value}: {detail}")
    if result.regression:
        assert result.expected is not None
        why = f" ({result.diagnosis.summary})" if result.diagnosis else ""
        raise AssertionError(f"regression: expected {result.expected.value}, got {result.outcome.value}{why}: {detail}")


def publish_artifacts(config: pytest.Config, result: CellResult, output_path: str) -> list[Path]:
    """Copy the cell's trace, video and decisive screenshot into pytest-playwright's per-test folder, under
    the same options and names it uses for its own tests. The run folder keeps the originals."""
    run_dir = config.stash[STATE].run_dir
    attempt = attempt_folder(run_dir, result.cell_id, result.attempts)
    wanted: list[tuple[str, Path | None, str]] = [
        ("tracing", run_dir / result.trace_path if result.trace_path else None, "trace.zip"),
        ("video", attempt / "video.webm", "video.webm"),
        ("screenshot", run_dir / result.decisive.path if result.decisive else None, "test-finished-1.png"),
    ]
    copied = []
    for option, source, name in wanted:
        mode = str(opt(config, option, "off") or "off")
        if source is None or not source.is_file() or mode == "off":
            continue
        # retain-on-failure, only-on-failure: the test fails or is broken exactly when the cell isn't as expected
        if mode != "on" and result.matches_expectation:
            continue
        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / name)
        copied.append(folder / name)
    return copied
