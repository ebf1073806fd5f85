"""Installs that never came back (README "When the install never comes back"), against the simulator.

HubSpot keeps every refusal on its own page: your redirect URI never hears of it. So your server records each
install link it hands out, keyed by its `state`, with what the link asks for; the callback clears it. A link
whose callback has not come within N minutes is an abandoned or blocked install. Log its app and scope set,
never the `state` itself, and support answers the customer with `scopematrix explain`.
"""

import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import Request


@dataclass
class PendingInstalls:
    """What an app's server keeps: the links handed out and not yet called back."""

    now: float = 0.0  # a clock of the example's own: minutes
    pending: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # state -> (app, scope set, when)

    def link(self, app_url: str, hub_id: int, client_id: str, redirect_uri: str, scope_set: str, scopes: str) -> str:
        state = secrets.token_urlsafe(16)
        self.pending[state] = (client_id, scope_set, self.now)
        query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "scope": scopes, "state": state})
        return f"{app_url}/oauth/{hub_id}/authorize?{query.replace('+', '%20')}"

    def callback(self, state: str) -> None:
        self.pending.pop(state, None)

    def never_came_back(self, minutes: float) -> list[tuple[str, str]]:
        """(app, scope set) of each link older than `minutes` without a callback: what to log, nothing secret."""
        return [(app, scope_set) for app, scope_set, when in self.pending.values() if self.now - when >= minutes]


def test_a_blocked_install_is_the_link_that_never_came_back(signed_in_page, sm_run, sm_target):
    app = sm_run.matrix.apps["crm-sync"]
    hub = sm_run.matrix.account("enterprise").hub_id
    installs = PendingInstalls()

    def callback(request: Request) -> None:  # stands for your server's handler at the redirect URI
        if request.url.startswith(app.redirect_uri + "?"):
            installs.callback(parse_qs(urlsplit(request.url).query)["state"][0])

    for user in ("restricted", "super-admin"):  # one is refused on HubSpot's page; one installs
        page = signed_in_page(user)
        page.on("request", callback)
        page.goto(installs.link(sm_target.app_url, hub, app.client_id, app.redirect_uri, "crm-read",
                                "oauth crm.objects.contacts.read crm.objects.companies.read"))  # fmt: skip
        connect = page.get_by_role("button", name=re.compile("Connect app|Grant access"))
        if user == "super-admin":
            with page.expect_request(lambda r: r.url.startswith(app.redirect_uri)):
                connect.click()
        else:
            # HubSpot's refusal ("…hasn't been approved…"), which never reaches the app
            page.get_by_text(re.compile("approved|permissions")).first.wait_for()
    installs.now += 15
    assert installs.never_came_back(minutes=10) == [(app.client_id, "crm-read")]
    # Support now asks the customer for their role and products, and answers from the matrix:
    #   scopematrix explain --role restricted --products "marketing:enterprise,sales:enterprise" --scope-set crm-read
