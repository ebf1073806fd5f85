from __future__ import annotations

from scopematrix.matrix import load_matrix

MATRIX = load_matrix()


def test_cells_are_users_times_their_accounts_times_scope_sets_with_readable_ids():
    cells = MATRIX.cells()
    expected = sum(len(u.accounts) for u in MATRIX.spec.users) * len(MATRIX.spec.scope_sets)
    assert len(cells) == expected == len({c.id for c in cells})
    assert "admin-no-marketplace@marketing-pro/seed-app" in {c.id for c in cells}


def test_one_user_still_gets_the_installer_and_super_admin_credentials_it_needs():
    cells = MATRIX.select(users=["admin-marketplace"], scope_sets=["crm-after-super-admin"])
    assert MATRIX.users_needed(cells) == {"admin-marketplace", "super-admin"}
    plain = MATRIX.select(users=["sales-admin"], scope_sets=["crm-read"])
    assert MATRIX.users_needed(plain, diagnose=False) == {"sales-admin"}
    assert MATRIX.users_needed(plain) == {"sales-admin", "super-admin"}


def test_filters_take_globs():
    assert {c.account.id for c in MATRIX.select(accounts=["*pro"])} == {"marketing-pro"}


def test_every_baseline_expectation_agrees_with_the_rules_oracle(scenario):
    from tests.oracle import expected_outcome

    assert MATRIX.baseline is not None and MATRIX.stale_expectations() == []
    cells = {c.id: c for c in MATRIX.cells()}
    assert {e.cell for e in MATRIX.baseline.expectations} == set(cells)
    for entry in MATRIX.baseline.expectations:
        assert entry.outcome is expected_outcome(scenario, cells[entry.cell], MATRIX), entry.cell
