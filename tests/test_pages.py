"""Page objects against hand-written HTML that our simulator never renders: other tags, other nesting,
other wording positions. What a person reads decides, never one renderer's markup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from playwright.async_api import Page, async_playwright

from scopematrix.browser import CHROMIUM_ARGS, find_browser
from scopematrix.flow import classify_error
from scopematrix.model import Outcome, Screen
from scopematrix.pages.account_picker import AccountPickerPage
from scopematrix.pages.consent import ConsentPage
from scopematrix.pages.errors import ConnectionErrorPage, ErrorCause, PermissionDeniedPage
from scopematrix.pages.login import LoginPasswordPage
from scopematrix.pages.screens import identify, screen_of

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def on_page(html: str, action: Callable[[Page], Awaitable[T]]) -> T:
    async def run() -> T:
        choice = find_browser(headless=True)
        assert choice is not None
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=choice.executable_path, args=list(CHROMIUM_ARGS))
            try:
                page = await browser.new_page()
                await page.set_content(html)
                return await action(page)
            finally:
                await browser.close()

    return asyncio.run(run())


async def _screen(page: Page) -> Screen:
    return screen_of(await identify(page, 1.0, 2000))


SCREENS = [
    # The account denial as body text in a div soup, heading as a styled span.
    (
        '<div class="h"><span>Couldn&#39;t complete</span> <span>the connection</span></div><div><div>This account '
        "doesn't have access to some HubSpot features that are required by this app.</div></div>",
        Screen.CONNECTION_ERROR,
    ),
    # A 2026 denial sitting in the body under the generic heading.
    (
        "<h3>Couldn’t complete the connection</h3><section>You don’t have the right\n permissions to install X"
        "<dl><dt>App Marketplace access</dt><dt>Forms › Publish</dt></dl></section>",
        Screen.PERMISSION_DENIED,
    ),
    # The legacy role page with a non-breaking space and no heading at all.
    ("<p>Uh oh!</p><p>You do not have the correct&nbsp;role to grant these permissions.</p>", Screen.PERMISSION_DENIED),
    ("<table><tr><td>Connect app</td></tr></table><div role='button'>Connect app</div>", Screen.CONSENT),
    (
        "<main><b>Couldn’t complete the connection</b><p>Authorization failed because this app hasn’t been approved "
        "to access the required scopes.</p></main>",
        Screen.NEEDS_APPROVAL,
    ),
    ("<div>Select your HubSpot account</div><a href='#'>Acme (123456)</a>", Screen.ACCOUNT_PICKER),
    # The generic heading only in the window title; the cause sentence alone says what this is.
    (
        "<title>Couldn’t complete the connection</title><p>An invalid scope name was provided.</p>",
        Screen.CONNECTION_ERROR,
    ),
    ("<h1>Scheduled maintenance</h1><p>Back soon.</p>", Screen.UNKNOWN),
]


@pytest.mark.parametrize(("html", "screen"), SCREENS, ids=[s.value + str(i) for i, (_, s) in enumerate(SCREENS)])
def test_screens_are_recognised_by_their_texts_in_any_markup(html, screen):
    assert on_page(html, _screen) is screen


def test_the_cause_is_read_from_the_body_wherever_it_sits():
    html = (
        "<article><em>Couldn't complete the connection</em><ul><li>Authorization failed because there is a "
        "mismatch between the scopes in the install URL and the app's configured scopes.</li></ul></article>"
    )

    async def read(page: Page) -> tuple[ErrorCause, str]:
        obj = ConnectionErrorPage(page)
        return await obj.cause(), await obj.message()

    cause, message = on_page(html, read)
    assert cause is ErrorCause.SCOPE_MISMATCH and classify_error(cause) is Outcome.APP_MISCONFIGURED
    assert message.startswith("Authorization failed because there is a mismatch")


def test_missing_permissions_are_read_from_any_list_shape():
    shapes = [
        "<ul><li>Forms › Publish</li><li>Website pages › Edit</li></ul>",
        "<div>Forms › Publish</div><div>Website pages › Edit</div>",
        "<p>Forms › Publish<br>Website pages › Edit</p>",
        "<ol><li>Forms › Publish</li><li>Website pages › Edit</li></ol><p>Contact your admin.</p>",
    ]
    for shape in shapes:
        html = f"<h2>You don't have the right permissions to install X</h2><p>Ask a super admin.</p>{shape}" \
               "<button>Accept all</button>"  # fmt: skip
        perms = on_page(html, lambda page: PermissionDeniedPage(page).missing_permissions())
        assert perms == ["Forms › Publish", "Website pages › Edit"], (shape, perms)


def test_a_consent_list_that_cannot_be_read_is_unknown_not_a_dropped_optional_scope():
    def read(html: str) -> tuple[str, ...] | None:
        return on_page(html, lambda p: ConsentPage(p).scopes_shown(("oauth", "crm.objects.contacts.read"),
                                                                  ("crm.objects.users.read",)))  # fmt: skip

    unknown = "<ul><li>See and update your contact records</li></ul><button>Connect app</button>"
    assert read(unknown) is None  # HubSpot's own wording: we can't tell what is missing
    known = "<ol><li>View contacts</li></ol><button>Grant access</button>"
    assert read(known) == ("crm.objects.contacts.read",)  # read, and the optional scope is truly not there
    named = "<div>crm.objects.contacts.read<br>crm.objects.users.read</div><button>Connect app</button>"
    assert read(named) == ("crm.objects.contacts.read", "crm.objects.users.read")


def test_an_account_is_picked_by_its_hub_id_or_name_anywhere_in_the_row():
    rows = (
        "<div>Choose an account</div>"
        "<div class='r'><span>Other Co</span><span>ID 999</span>"
        "<button onclick=\"document.title='999'\">Go</button></div>"
        "<div class='r'><span>Acme</span><span>Hub ID: 1000002</span>"
        "<button onclick=\"document.title='ok'\">Go</button></div>"
    )

    async def pick(page: Page) -> str:
        row = AccountPickerPage(page).row_for(1000002)
        await row.click()
        return await page.title()

    assert on_page(rows, pick) == "ok"
    by_name = "<ul><li>Acme Corp <a href='#' onclick=\"document.title='acme'\">Open</a></li>" \
              "<li>Beta <a href='#' onclick=\"document.title='beta'\">Open</a></li></ul>"  # fmt: skip

    async def pick_name(page: Page) -> str:
        await AccountPickerPage(page).row_for(1000002, "Acme Corp").click()
        return await page.title()

    assert on_page(by_name, pick_name) == "acme"


def test_a_single_form_login_gets_the_email_and_the_password():
    html = (
        "<form onsubmit=\"document.body.innerHTML='<p>'+this.u.value+'|'+this.p.value+'</p>';return false\">"
        "<label for=u>Email address</label><input id=username name=u type=text>"
        "<label for=p>Password</label><input id=p name=p type=password><button id=loginBtn>Log in</button></form>"
    )

    async def login(page: Page) -> str:
        assert screen_of(await identify(page, 1.0, 2000)) is Screen.LOGIN_PASSWORD
        await LoginPasswordPage(page).submit_password("pw", "a@b.c")
        return str(await page.evaluate("document.body.innerText")).strip()

    assert on_page(html, login) == "a@b.c|pw"
