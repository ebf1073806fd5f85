"""A full disk ends a matrix run in one line: what was written stays, nothing crashes pytest.

Allure's results are a secondary output: the first write that fails stops them, with one warning at the end.
The run's own results file is not: a cell that can't be saved ends the session (exit 3), since every cell
after it would be lost too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import allure_commons
from allure_commons.logger import AllureFileLogger

WRITES = ("report_result", "report_container", "report_attached_file", "report_attached_data", "report_globals")


class AllureWrites:
    """Allure's file writer, stopped at its first OSError (a full disk) instead of raising inside pytest."""

    def __init__(self) -> None:
        self.failure = ""

    def guard(self, write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def guarded(*args: Any, **kwargs: Any) -> None:
            if self.failure:
                return
            try:
                write(*args, **kwargs)
            except OSError as exc:
                self.failure = str(exc.strerror or exc)

        return guarded

    def install(self) -> AllureWrites:
        """Guard every Allure file writer registered for this session (allure-pytest registers one per
        --alluredir; it stays registered under its name, so allure-pytest's own clean-up still finds it)."""
        for name in WRITES:
            for impl in getattr(allure_commons.plugin_manager.hook, name).get_hookimpls():
                if isinstance(impl.plugin, AllureFileLogger) and not hasattr(impl.function, "__wrapped__"):
                    impl.function = self.guard(impl.function)
        return self
