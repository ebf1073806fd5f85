"""One test per matrix cell. The plugin (scopematrix.plugin) parametrizes and runs them."""

from __future__ import annotations

import pytest

from scopematrix.model import CellResult
from scopematrix.plugin import check_cell, publish_artifacts, record_allure


def test_cell(
    user: str, account: str, scope_set: str, cell_result: CellResult, pytestconfig: pytest.Config, output_path: str
) -> None:
    record_allure(pytestconfig, cell_result)
    publish_artifacts(pytestconfig, cell_result, output_path)
    check_cell(cell_result)
