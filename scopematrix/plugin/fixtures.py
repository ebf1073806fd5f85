"""Fixtures for your own tests: `sm_target`, `authorize`, `signed_in_context` and `signed_in_page`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from scopematrix.engine import Engine
from scopematrix.errors import UsageError
from scopematrix.flow import LoginFailure
from scopematrix.matrix import Cell, ScopeSetEntry
from scopematrix.model import CellResult
from scopematrix.plugin.state import STATE, RunState, build_state, engine_for, worker_input
from scopematrix.target import Target


class Authorize:
    """`authorize(user, account, scopes, optional=…)`: one install attempt through the hosted flow.

    Returns the cell's result, with its outcome, the screen's texts, screenshots (under `run_dir`) and, for
    a denial, the diagnosis. The attempt is not a matrix cell: it is not in the run's report.
    """

    def __init__(self, state: RunState, engine: Engine) -> None:
        self.state, self.engine = state, engine
        self.run_dir = state.run_dir

    def __call__(
        self, user: str, account: str, scopes: Sequence[str], optional: Sequence[str] = (), app: str | None = None
    ) -> CellResult:
        matrix = self.state.matrix
        known_users, known_accounts = {u.id for u in matrix.spec.users}, {a.id for a in matrix.spec.accounts}
        if user not in known_users:
            raise ValueError(f"unknown user {user!r}: use one of {sorted(known_users)} from {matrix.source}")
        if account not in known_accounts:
            raise ValueError(f"unknown account {account!r}: use one of {sorted(known_accounts)} from {matrix.source}")
        key = json.dumps([list(scopes), list(optional), app])
        scope_set = ScopeSetEntry(
            id="adhoc-" + hashlib.sha256(key.encode()).hexdigest()[:10],
            app=app,
            scopes=list(scopes),
            optional=list(optional),
        )
        return self.engine.run_unrecorded(Cell(matrix.user(user), matrix.account(account), scope_set))

    def storage_state(self, user: str) -> dict[str, object]:
        """The user's signed-in browser state, from the run's one login per user (or their saved login)."""
        state = self.engine.storage_state(user)
        if isinstance(state, LoginFailure):
            pytest.fail(f"{user} could not log in: {state.message}", pytrace=False)
        return state


@pytest.fixture(scope="session")
def sm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunState]:
    """The matrix run of this session, or, for a session of your own tests, one with every matrix user."""
    state = request.config.stash.get(STATE, None)
    if state is not None:
        yield state
        return
    try:
        own = build_state(
            request.config, tmp_path_factory.mktemp("scopematrix"), worker_input(request.config), everyone=True
        )
    except UsageError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)
    try:
        yield own
    finally:
        if own.engine is not None:
            own.engine.stop()
        if own.sim is not None:
            own.sim.stop()


@pytest.fixture(scope="session")
def sm_target(sm_run: RunState) -> Target:
    """Where the flow runs: the embedded simulator (default) or HubSpot (`--sm-target live`)."""
    return sm_run.target


@pytest.fixture(scope="session")
def authorize(request: pytest.FixtureRequest, sm_run: RunState) -> Authorize:
    return Authorize(sm_run, engine_for(request.config, sm_run))


@pytest.fixture
def signed_in_context(new_context: Callable[..., Any], authorize: Authorize) -> Callable[[str], Any]:
    """`signed_in_context(user)`: a pytest-playwright context signed in as that matrix user (one login per
    user per session, shared with the matrix's cells)."""

    def make(user: str, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", authorize.state.target.app_url)  # page.goto("/") opens HubSpot's home
        return new_context(storage_state=authorize.storage_state(user), **kwargs)

    return make


@pytest.fixture
def signed_in_page(signed_in_context: Callable[[str], Any]) -> Callable[[str], Any]:
    """`signed_in_page(user)`: a new page in `signed_in_context(user)`."""

    def make(user: str) -> Any:
        return signed_in_context(user).new_page()

    return make
