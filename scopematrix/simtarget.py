"""The `sim` target: start the embedded simulator and provision the matrix's users from its scenario.

This is set-up, like creating test users in a sandbox portal; nothing here classifies a cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from scopematrix.errors import UsageError
from scopematrix.matrix import Matrix
from scopematrix.simulator.app import create_app
from scopematrix.simulator.scenario import Scenario, load_scenario
from scopematrix.simulator.server import SimServer
from scopematrix.simulator.state import SimOptions
from scopematrix.target import Target, resolve_apps, resolve_credentials


def provisioned_env(matrix: Matrix, scenario: Scenario) -> dict[str, str]:
    """Env values for each matrix user's variables, taken from the scenario user with the same id."""
    env: dict[str, str] = {}
    for user in matrix.spec.users:
        sim_user = scenario.users.get(user.id)
        if sim_user is None:
            continue
        env[user.email_env] = sim_user.email
        env[user.password_env] = sim_user.password
        if user.totp_secret_env and sim_user.totp_secret:
            env[user.totp_secret_env] = sim_user.totp_secret
    for entry in matrix.apps.values():
        app = scenario.apps.get(entry.client_id or "")
        if app is not None:
            env[entry.client_secret_env] = app.client_secret
    return env


def start_simulator(
    scenario_path: Path | None, latency_s: float = 0.0, scenario: Scenario | None = None
) -> tuple[SimServer, Scenario]:
    scenario = scenario or load_scenario(scenario_path)
    server = SimServer(create_app(scenario, SimOptions(test_support=True, latency_s=latency_s)))
    return server.start(), scenario


def with_candidate_scopes(scenario: Scenario, client_id: str, required: list[str], optional: list[str]) -> Scenario:
    """The scenario with the app's scope settings extended, as a developer would before shipping a new
    scope: HubSpot rejects any scope that the app's settings don't list (scope mismatch)."""
    app = scenario.apps.get(client_id)
    if app is None:
        return scenario
    scenario.apps[client_id] = dataclasses.replace(
        app,
        conditional=tuple(dict.fromkeys([*app.conditional, *(s for s in required if s not in app.required)])),
        optional=tuple(dict.fromkeys([*app.optional, *optional])),
    )
    return scenario


def sim_target(
    matrix: Matrix, scenario: Scenario, url: str, user_ids: set[str], env: Mapping[str, str] | None = None
) -> Target:
    missing = sorted(u for u in user_ids if u not in scenario.users)
    if missing:
        raise UsageError(
            f"matrix user '{missing[0]}' does not exist in the simulator scenario.",
            "add it to the scenario file or use --target live.",
        )
    values = dict(env or {})
    values.update(provisioned_env(matrix, scenario))
    return Target(
        kind="sim",
        app_url=url,
        api_url=url,
        apps=resolve_apps(matrix, values),
        main_app=matrix.app.id,
        credentials=resolve_credentials(matrix, values, user_ids),
        isolation=True,
    )
