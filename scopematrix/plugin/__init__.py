"""The pytest plugin (registered as `scopematrix`): the matrix as tests, and fixtures for your own tests.

`pytest fixtures/matrix.yaml -k "sales-admin and enterprise"` runs the matrix in that YAML: the file
stands for the packaged suite (scopematrix/suite/test_matrix.py), one test per cell. `scopematrix run`
is a front end over the same route. Works serially and under pytest-xdist (`-n N`): each user's cells
go to one worker, the controller starts the simulator once and writes the report from every worker's
results file. Without a matrix on the command line the plugin only offers its fixtures: `sm_target`,
`authorize`, `signed_in_context` and `signed_in_page`.

Rooms: options.py (command line), state.py (the run in pytest's stash), session.py (collection,
parametrization, xdist, the report at the end), publish.py (a cell's verdict, Allure, artifacts),
fixtures.py (fixtures for your own tests). pytest finds the hooks and fixtures through the names below.
"""

from scopematrix.plugin.fixtures import (
    Authorize,
    authorize,
    signed_in_context,
    signed_in_page,
    sm_run,
    sm_target,
)
from scopematrix.plugin.options import pytest_addoption
from scopematrix.plugin.publish import InfrastructureTrouble, check_cell, publish_artifacts, record_allure
from scopematrix.plugin.session import (
    cell_result,
    pytest_cmdline_main,
    pytest_collection_finish,
    pytest_configure,
    pytest_configure_node,
    pytest_generate_tests,
    pytest_plugin_registered,
    pytest_report_header,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_xdist_make_scheduler,
)
from scopematrix.plugin.state import STATE, RunState

__all__ = [
    "STATE",
    "Authorize",
    "InfrastructureTrouble",
    "RunState",
    "authorize",
    "cell_result",
    "check_cell",
    "publish_artifacts",
    "pytest_addoption",
    "pytest_cmdline_main",
    "pytest_collection_finish",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_plugin_registered",
    "pytest_report_header",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_xdist_make_scheduler",
    "record_allure",
    "signed_in_context",
    "signed_in_page",
    "sm_run",
    "sm_target",
]
