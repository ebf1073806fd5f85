"""The plugin's command-line options (`pytest --help` lists them under "scopematrix")."""

from __future__ import annotations

import pytest

from scopematrix.slots import default_concurrency


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("scopematrix")
    g.addoption("--sm-matrix", default=None, help="matrix YAML (default fixtures/matrix.yaml)")
    g.addoption("--sm-scenario", default=None, help="simulator scenario YAML (default fixtures/scenario.yaml)")
    g.addoption("--sm-target", default="sim", choices=["sim", "live"])
    g.addoption("--sm-target-url", default=None, help="use an already running simulator at this URL")
    g.addoption("--sm-app-url", default=None)
    g.addoption("--sm-api-url", default=None)
    g.addoption("--sm-env-file", default=None)
    g.addoption("--sm-user", action="append", default=[])
    g.addoption("--sm-account", action="append", default=[])
    g.addoption("--sm-scope-set", action="append", default=[])
    g.addoption("--sm-cells", default=None, help="JSON file listing the cell ids to run")
    g.addoption("--sm-concurrency", type=int, default=default_concurrency())
    g.addoption("--sm-approve", action="store_true")
    g.addoption("--sm-no-diagnose", action="store_true")
    g.addoption("--sm-run-dir", default=None)
    g.addoption("--sm-baseline", default=None)
    g.addoption("--sm-connect", default=None)
    g.addoption("--sm-remote-executable", default=None)
    g.addoption("--sm-grace", type=float, default=None)
    g.addoption("--sm-timeout", type=float, default=None, help="per-action timeout in seconds")
    g.addoption("--sm-logins-per-minute", type=float, default=None)
    g.addoption("--sm-latency", type=float, default=0.0, help="simulator per-response latency (s)")
    g.addoption("--sm-retries", type=int, default=1)
    g.addoption("--sm-plan", default=None, help="write the ids of the cells pytest selected (after -k, --lf) here")
    g.addoption("--sm-no-report", action="store_true", help="don't write the report (the CLI writes it)")
