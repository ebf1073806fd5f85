"""One test per matrix cell. The plugin (scopematrix.plugin) parametrizes and runs them."""

from __future__ import annotations

from scopematrix.model import CellResult
from scopematrix.plugin import check_cell


def test_cell(user: str, account: str, scope_set: str, cell_result: CellResult) -> None:
    check_cell(cell_result)
