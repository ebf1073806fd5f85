"""The probe app's answer, checked with your app (open question 13): approvals are per app, so where your app
already has scopes approved in the account, the probe app (which has none) can say "blocked" where your app
installs. Checked only with install URLs your app's declared settings accept."""

from __future__ import annotations

from scopematrix.diagnose.probes import YourApp
from scopematrix.matrix import Cell
from scopematrix.model import Diagnosis, Outcome


async def confirm(
    your_app: YourApp,
    cell: Cell,
    found: tuple[Diagnosis, bool],
    required: tuple[str, ...],
    tally: list[int],
) -> str | None:
    """None when your app agrees with the probe app (or no valid URL of your app could tell); else why the
    probe app's answer is not to be named. `found`: the probe app's diagnosis, and whether it named the scopes
    that bring the account screen back to a user who can't install at all; your app agrees with that when,
    without them, HubSpot still refuses the user, but not for the account. `required`: your app's required
    scopes."""
    diagnosis, account_only = found
    user = cell.user.id
    if diagnosis.blocking_scopes:
        named = ", ".join(diagnosis.blocking_scopes)
        keep = [s for s in cell.scope_set.scopes if s not in diagnosis.blocking_scopes]
        out = await your_app.outcome(cell, keep, cell.scope_set.optional, tally)
        if out is None:
            return None  # your app requires one of them: no valid URL of it leaves them out
        if account_only and out.installs:
            return f"the probe app could install nothing for {user} here, but your app installs without {{{named}}}"
        if out is Outcome.DENIED_ACCOUNT if account_only else out.blocked:
            them = "it" if len(diagnosis.blocking_scopes) == 1 else "them"
            return f"the probe app named {{{named}}}, but your app without {them} still ends in {out.value}"
        return None
    if diagnosis.attribution == "installer":
        # Your app's smallest valid URL: its required scopes, no optional ones; the same for every scope set of
        # the app, so one answer serves them all.
        out = await your_app.outcome(cell, required, (), tally)
        if out is not None and out.installs:
            return (
                f"the probe app could install nothing for {user} here, but your app installs with "
                f"{{{', '.join(required)}}}: scopes already approved for your app in this account count"
            )
    return None
