"""The authorize screens: the account picker, consent, and every denial, decided by the rules."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scopematrix.rules.catalog import CATALOG
from scopematrix.rules.decide import Decision, Verdict, approved_scopes, check_install, check_request
from scopematrix.rules.model import AuthorizeRequest
from scopematrix.simulator.base import SESSION_COOKIE, SimBase, split_scopes
from scopematrix.simulator.state import CodeRecord, PendingGrant

MESSAGES: dict[Verdict, str] = {
    Verdict.BAD_CLIENT_ID: "An invalid app client_id was provided. Please contact the app developer.",
    Verdict.INVALID_SCOPE: "An invalid scope name was provided. Please contact the app developer.",
    Verdict.INSUFFICIENT_SCOPES: (
        "Authorization failed because the provided scopes are insufficient. Please contact the app developer."
    ),
    Verdict.SCOPE_MISMATCH: (
        "Authorization failed because there is a mismatch between the scopes in the install URL and the "
        "app's configured scopes. Please contact the app developer."
    ),
    Verdict.ACCOUNT_LACKS_FEATURES: (
        "This account doesn't have access to some HubSpot features that are required by this app. "
        "Please contact the app developer."
    ),
    Verdict.AUP_NOT_SIGNED: (
        "The app could not be installed because the app developer has not signed the acceptable use policy."
    ),
}

# The older wordings the brief records (section 2d), for the scenario switch error_texts: older.
OLDER_MESSAGES: dict[Verdict, str] = {
    Verdict.INSUFFICIENT_SCOPES: "Insufficient scopes were provided. Please contact the app developer.",
}
OLDER_REDIRECT = "The redirect_uri doesn't match the client registered redirect_uri. Please contact the app developer."


class AuthorizeRoutes(SimBase):
    async def authorize(self, request: Request) -> Response:
        if len(request.url.query) > self.options.max_query_chars:
            return self.error_page(request, "This install link is too long. Please contact the app developer.", 414)
        raw_hub = request.path_params.get("hub_id")
        if raw_hub is not None and not raw_hub.isdigit():
            return self.not_found_page(request)
        user = self.current_user(request)
        if user is None:
            nxt = request.url.path + "?" + request.url.query
            return RedirectResponse("/login?" + urlencode({"loginRedirectUrl": nxt}), status_code=302)
        q = request.query_params
        areq = AuthorizeRequest(
            client_id=q.get("client_id", ""),
            redirect_uri=q.get("redirect_uri", ""),
            scopes=split_scopes(q.get("scope")),
            optional_scopes=split_scopes(q.get("optional_scope")),
        )
        early = check_request(self.scenario.apps, areq, self.scenario.switches)
        if early is not None:
            return self.render_decision(request, early, areq)
        app = self.scenario.apps[areq.client_id]
        hub_id = int(raw_hub) if raw_hub is not None and len(raw_hub) < 12 else None
        member = user.membership(hub_id) if hub_id is not None else None
        if member is None:
            accounts = [self.scenario.accounts[m.hub_id] for m in user.memberships]
            rows = [
                {
                    "hub_id": a.hub_id,
                    "name": a.name,
                    "link": f"/oauth/{a.hub_id}/authorize?{request.url.query}",
                }
                for a in accounts
            ]
            return self.page(request, "account_picker.html.j2", app=app, accounts=rows, query=request.url.query)
        account = self.scenario.accounts[member.hub_id]
        ns = self.namespace(request)
        earlier = self.state.installed_apps(ns, account.hub_id)
        approved = approved_scopes(account, app.client_id, earlier, self.scenario.switches)
        decision = check_install(app, areq, account, member, approved, self.scenario.switches)
        if decision.verdict is not Verdict.CONSENT:
            return self.render_decision(request, decision, areq)
        grant_id = secrets.token_urlsafe(16)
        self.state.grants[grant_id] = PendingGrant(
            session=request.cookies.get(SESSION_COOKIE, ""),
            namespace=ns,
            client_id=app.client_id,
            hub_id=account.hub_id,
            redirect_uri=areq.redirect_uri,
            state=q.get("state"),
            scopes=decision.granted,
            user_id=user.id,
        )
        scopes = [{"name": s, "grants": CATALOG[s].grants} for s in decision.granted]
        button = self.scenario.switches.consent_button
        return self.page(
            request,
            "consent.html.j2",
            app=app,
            account=account,
            scopes=scopes,
            grant_id=grant_id,
            button=button,
        )

    async def choose(self, request: Request) -> Response:
        """The account picker's form (rows or a dropdown, then a confirm button): on to the pinned URL."""
        hub, query = request.query_params.get("hub", ""), request.query_params.get("q", "")
        path = f"/oauth/{hub}/authorize" if hub.isdigit() and len(hub) < 12 else "/oauth/authorize"
        return RedirectResponse(f"{path}?{query}", status_code=303)

    def render_decision(self, request: Request, decision: Decision, areq: AuthorizeRequest) -> Response:
        app = self.scenario.apps.get(areq.client_id)
        if decision.verdict is Verdict.REDIRECT_MISMATCH:
            if self.scenario.rendering.error_texts == "older":
                return self.error_page(request, OLDER_REDIRECT)
            message = (
                f"Authorization failed as the redirect URL '{areq.redirect_uri}' doesn't match the app's "
                "registered redirect URL. Please consult the app developer."
            )
            return self.error_page(request, message)
        if decision.verdict is Verdict.USER_LACKS_PERMISSIONS:
            if self.scenario.switches.denial_page == "legacy":
                return self.page(request, "denied_legacy.html.j2", 403)
            return self.page(request, "denied_2026.html.j2", 403, app=app, missing=decision.missing_permissions)
        if decision.verdict is Verdict.NEEDS_APPROVAL:
            return self.page(request, "needs_approval.html.j2", 403, app=app)
        older = OLDER_MESSAGES.get(decision.verdict) if self.scenario.rendering.error_texts == "older" else None
        return self.error_page(request, older or MESSAGES[decision.verdict])

    async def decide(self, request: Request) -> Response:
        form = await request.form()
        grant = self.state.grants.pop(str(form.get("grant", "")), None)
        if grant is None or grant.session != request.cookies.get(SESSION_COOKIE, ""):
            return self.error_page(request, "This install link is no longer valid. Please try again.", 400)
        app = self.scenario.apps[grant.client_id]
        if form.get("action") != "approve":
            return self.page(request, "cancelled.html.j2", app=app)
        key = (grant.namespace, grant.client_id, grant.hub_id)
        self.state.installs.setdefault(key, set()).update(grant.scopes)
        code = self.state.new_code(
            CodeRecord(
                client_id=grant.client_id,
                redirect_uri=grant.redirect_uri,
                hub_id=grant.hub_id,
                user_id=grant.user_id,
                scopes=grant.scopes,
                expires_at=time.time() + self.options.code_ttl_s,
            )
        )
        params = {"code": code} | ({"state": grant.state} if grant.state is not None else {})
        sep = "&" if urlsplit(grant.redirect_uri).query else "?"
        return RedirectResponse(grant.redirect_uri + sep + urlencode(params), status_code=302)
