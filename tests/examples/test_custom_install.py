"""Your own tests, beside the matrix: the scopematrix plugin's fixtures (README "Your own tests").

`authorize` runs one install through HubSpot's hosted flow and returns the cell's typed result;
`signed_in_page` is pytest-playwright's page, already signed in as a matrix user (one login per user).
"""

import re

from playwright.sync_api import expect

from scopematrix.model import Outcome


def test_a_sales_admin_installs_crm_sync_on_enterprise(authorize):
    result = authorize("sales-admin", "enterprise", ["crm.objects.contacts.read"], app="crm-sync")
    assert result.outcome is Outcome.GRANTED, result.message
    assert result.offered_scopes is not None and "crm.objects.contacts.read" in result.offered_scopes  # on consent


def test_a_free_account_blocks_the_seed_app_and_the_diagnosis_names_why(authorize):
    result = authorize("super-admin", "free", ["forms", "content", "automation"], app="seed-app")
    assert result.outcome is Outcome.DENIED_ACCOUNT
    assert result.diagnosis is not None and result.diagnosis.attribution == "account"
    assert set(result.diagnosis.blocking_scopes) == {"content", "automation"}  # forms alone would install


def test_a_signed_in_page_goes_past_the_login(signed_in_page):
    page = signed_in_page("sales-admin")
    page.goto("/")  # the target's home page: the context's base URL
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_the_project_fixture_signs_in_the_super_admin(super_admin_page, sm_target):
    super_admin_page.goto("/")  # a fixture from the top-level conftest.py
    expect(super_admin_page).to_have_url(sm_target.app_url + "/")
