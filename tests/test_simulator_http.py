from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from starlette.testclient import TestClient

from scopematrix.rules.model import AppConfig
from scopematrix.simulator.app import SimulatorApp
from scopematrix.simulator.scenario import Scenario
from scopematrix.simulator.server import SimServer

CLIENT = "7e1d2c3b-0000-4a5b-8c9d-0123456789ab"
SECRET = "sim-secret-http-tests"
REDIRECT = "https://scopematrix.example/oauth/callback"
# An app whose settings let these tests request any scope combination they need.
TEST_APP = AppConfig(
    client_id=CLIENT,
    client_secret=SECRET,
    name="HTTP Test App",
    redirect_urls=(REDIRECT,),
    required=("oauth",),
    conditional=("forms", "content", "contacts", "files", "crm.objects.contacts.read", "crm.objects.deals.read"),
    optional=("crm.objects.users.read", "crm.objects.leads.read", "social"),
)


@pytest.fixture
def scenario(scenario: Scenario) -> Scenario:
    own = copy.deepcopy(scenario)
    own.apps[CLIENT] = TEST_APP
    return own


def login(client: TestClient, scenario: Scenario, user_id: str) -> None:
    user = scenario.users[user_id]
    client.post("/login/email", data={"email": user.email, "loginRedirectUrl": "/"}, follow_redirects=False)
    r = client.post("/login/password", data={"password": user.password}, follow_redirects=False)
    if user.totp_secret:
        assert r.headers["location"] == "/login/2fa"
        client.post("/login/2fa", data={"code": pyotp.TOTP(user.totp_secret).now()}, follow_redirects=False)
        client.post("/login/remember", data={"remember": "no"}, follow_redirects=False)
    assert client.get("/", follow_redirects=False).status_code == 200


def authorize(client: TestClient, hub: int | None, scope: str, optional: str = "", **extra: str) -> httpx.Response:
    params = {"client_id": CLIENT, "redirect_uri": REDIRECT, "scope": scope, "state": "s1"} | extra
    if optional:
        params["optional_scope"] = optional
    path = f"/oauth/{hub}/authorize" if hub else "/oauth/authorize"
    return client.get(path + "?" + urlencode(params), follow_redirects=False)


def approve(client: TestClient, consent: httpx.Response) -> str:
    grant = re.search(r'name="grant" value="([^"]+)"', consent.text)
    assert grant, consent.text
    r = client.post(
        "/oauth/authorize/decision", data={"grant": grant.group(1), "action": "approve"}, follow_redirects=False
    )
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert r.headers["location"].startswith(REDIRECT) and query["state"] == ["s1"]
    return query["code"][0]


def exchange(client: TestClient, code: str, **override: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": CLIENT,
        "client_secret": SECRET,
        "redirect_uri": REDIRECT,
        "code": code,
    } | override
    return client.post("/oauth/v1/token", data=form)


def test_unauthenticated_authorize_goes_to_login_and_back(sim_app: SimulatorApp):
    client = TestClient(sim_app)
    r = authorize(client, 1000002, "forms")
    assert r.status_code == 302 and r.headers["location"].startswith("/login?loginRedirectUrl=")


def test_login_with_totp_then_picker_consent_redirect_and_token_api(sim_app: SimulatorApp, scenario: Scenario):
    client = TestClient(sim_app)
    login(client, scenario, "totp-admin")
    picker = authorize(client, None, "crm.objects.contacts.read", "crm.objects.users.read")
    assert "Choose an account" in picker.text and "1000003" in picker.text
    consent = authorize(client, 1000003, "crm.objects.contacts.read", "crm.objects.users.read")
    assert "Connect app" in consent.text and 'data-scope="crm.objects.users.read"' not in consent.text
    code = approve(client, consent)
    r = exchange(client, code)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800 and body["hub_id"] == 1000003
    assert exchange(client, code).json()["status"] == "BAD_AUTH_CODE"  # single use
    info = client.get(f"/oauth/v1/access-tokens/{body['access_token']}").json()
    assert (
        info["scopes"] == ["oauth", "crm.objects.contacts.read"] and info["user"] == scenario.users["totp-admin"].email
    )
    assert info["signed_access_token"]["hubId"] == 1000003
    refresh = client.get(f"/oauth/v1/refresh-tokens/{body['refresh_token']}").json()
    assert refresh["client_id"] == CLIENT
    form = {
        "grant_type": "refresh_token",
        "client_id": CLIENT,
        "client_secret": SECRET,
        "refresh_token": body["refresh_token"],
    }
    assert client.post("/oauth/v1/token", data=form).status_code == 200
    assert client.delete(f"/oauth/v1/refresh-tokens/{body['refresh_token']}").status_code == 204
    assert client.post("/oauth/v1/token", data=form).json()["status"] == "BAD_REFRESH_TOKEN"


def test_wrong_totp_code_is_rejected(sim_app: SimulatorApp, scenario: Scenario):
    client = TestClient(sim_app)
    user = scenario.users["totp-admin"]
    client.post("/login/email", data={"email": user.email})
    client.post("/login/password", data={"password": user.password})
    assert "This doesn" in client.post("/login/2fa", data={"code": "000000"}).text


@pytest.mark.parametrize(
    ("user", "hub", "scope", "text"),
    [
        ("super-admin", 1000001, "content", "doesn&#39;t have access to some HubSpot features"),
        ("admin-no-marketplace", 1000002, "forms", "App Marketplace access"),
        ("restricted", 1000003, "forms", "Request approval"),
        ("super-admin", 1000002, "crm.objects.contact.read", "An invalid scope name"),
        ("super-admin", 1000002, "social", "mismatch between the scopes"),
    ],
)
def test_each_cause_has_its_screen_and_none_names_the_blocking_scope(sim_app, scenario, user, hub, scope, text):
    client = TestClient(sim_app)
    login(client, scenario, user)
    r = authorize(client, hub, scope)
    assert text in r.text
    assert f">{scope}<" not in r.text and f'"{scope}"' not in r.text


def test_redirect_is_checked_exactly_and_never_followed(sim_app, scenario):
    client = TestClient(sim_app)
    login(client, scenario, "super-admin")
    r = authorize(client, 1000002, "forms", redirect_uri=REDIRECT + "/../evil")
    assert r.status_code == 200 and "doesn&#39;t match the app&#39;s registered redirect URL" in r.text


def test_bad_client_id_and_token_errors(sim_app, scenario):
    client = TestClient(sim_app)
    login(client, scenario, "super-admin")
    assert "invalid app client_id" in authorize(client, 1000002, "forms", client_id="nope").text
    assert client.post("/oauth/v1/token", json={"grant_type": "x"}).status_code == 415
    r = client.post("/oauth/v1/token", data={"client_id": "nope"})
    assert r.json()["status"] == "BAD_CLIENT_ID" and "correlationId" in r.json() and r.json()["category"]
    assert (
        client.post("/oauth/v1/token", data={"client_id": CLIENT, "grant_type": "x"}).json()["status"]
        == "BAD_GRANT_TYPE"
    )
    bad_secret = exchange(client, "x", client_secret="wrong")
    assert bad_secret.json()["status"] == "BAD_CLIENT_SECRET"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/oauth/authorize?scope=%E0%A4%A&client_id=%ZZ"),
        ("GET", "/oauth/abc/authorize?scope=forms"),
        ("GET", "/oauth/99999999999999999999/authorize?scope=forms"),
        ("GET", "/oauth/authorize?" + "scope=" + "a" * 20000),
        ("GET", "/nowhere"),
        ("PUT", "/oauth/authorize"),
        ("DELETE", "/oauth/v1/token"),
        ("GET", "/oauth/v1/access-tokens/unknown"),
        ("POST", "/login/password"),
        ("POST", "/login/2fa"),
        ("POST", "/oauth/authorize/decision"),
        ("GET", "/login?loginRedirectUrl=//evil.example/"),
    ],
)
def test_bad_input_never_gives_a_500_or_a_traceback(sim_app, scenario, method, path):
    client = TestClient(sim_app, raise_server_exceptions=False)
    login(client, scenario, "super-admin")
    r = client.request(method, path, follow_redirects=False)
    assert r.status_code < 500
    assert "Traceback" not in r.text
    assert "evil.example" not in r.headers.get("location", "")


def test_test_support_switches_are_off_unless_enabled(scenario):
    from scopematrix.simulator.app import create_app

    client = TestClient(create_app(scenario))
    assert client.post("/__sim/reset").status_code == 404


def test_server_binds_loopback_only(sim_app):
    with pytest.raises(ValueError):
        SimServer(sim_app, host="0.0.0.0")


def test_one_hundred_parallel_flows_do_not_leak_between_sessions(sim_server: SimServer, scenario: Scenario):
    users = ["super-admin", "admin-marketplace", "admin-no-marketplace", "sales-admin"]
    expected = {
        "super-admin": "Connect app",
        "admin-marketplace": "Connect app",
        "admin-no-marketplace": "App Marketplace access",
        "sales-admin": "Forms › Publish",
    }

    def flow(i: int) -> tuple[str, bool, str]:
        uid = users[i % len(users)]
        with httpx.Client(base_url=sim_server.url) as client:
            user = scenario.users[uid]
            client.post("/login/email", data={"email": user.email})
            client.post("/login/password", data={"password": user.password})
            params = {"client_id": CLIENT, "redirect_uri": REDIRECT, "scope": "forms", "state": f"s{i}"}
            r = client.get("/oauth/1000002/authorize?" + urlencode(params))
            return uid, expected[uid] in r.text, r.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(flow, range(100)))
    assert all(ok for _, ok, _ in results), [u for u, ok, _ in results if not ok]


def test_cancel_shows_the_cancelled_screen_and_sends_nothing_back(sim_app, scenario):
    client = TestClient(sim_app)
    login(client, scenario, "super-admin")
    consent = authorize(client, 1000002, "forms")
    grant = re.search(r'name="grant" value="([^"]+)"', consent.text)
    assert grant
    r = client.post("/oauth/authorize/decision", data={"grant": grant.group(1), "action": "cancel"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 200 and "Connection cancelled" in r.text and "location" not in r.headers
    assert sim_app.simulator.state.approved("", CLIENT, 1000002) == set()


def test_insufficient_scopes_and_unsigned_policy_screens(scenario):
    import dataclasses

    from scopematrix.simulator.app import create_app
    from scopematrix.simulator.state import SimOptions

    app = scenario.apps[CLIENT]
    strict = dataclasses.replace(app, required=("oauth", "forms"))
    scenario.apps[CLIENT] = strict
    try:
        client = TestClient(create_app(scenario, SimOptions()))
        login(client, scenario, "super-admin")
        assert "the provided scopes are insufficient" in authorize(client, 1000002, "content").text
        scenario.apps[CLIENT] = dataclasses.replace(app, aup_signed=False)
        client = TestClient(create_app(scenario, SimOptions()))
        login(client, scenario, "super-admin")
        assert "has not signed the acceptable use policy" in authorize(client, 1000002, "forms").text
    finally:
        scenario.apps[CLIENT] = app


@pytest.mark.parametrize(
    "body",
    [
        {"faults": [{"path": "/x", "kind": "5xx", "times": -1}]},
        {"faults": [{"path": "/x", "kind": "5xx", "times": "many"}]},
        {"faults": [{"path": "/x", "kind": "melt"}]},
        {"faults": [], "latency_s": "slow"},
        {"faults": [], "latency_s": 1e9},
        {"faults": "all"},
        [1, 2],
    ],
)
def test_bad_fault_requests_are_refused_with_400(sim_app, body):
    response = TestClient(sim_app).post("/__sim/faults", json=body)
    assert response.status_code == 400 and "VALIDATION_ERROR" in response.text
    assert sim_app.options.faults == [] and sim_app.options.latency_s == 0
