"""Drive cells through HubSpot's hosted flow and classify what the browser shows.

Classification uses only the screens (page objects) and HubSpot's public token API. `harness.py` says
which module holds which job.
"""

from scopematrix.flow.harness import Harness
from scopematrix.flow.records import (
    FlowOptions,
    LoginFailure,
    Walk,
    WalkPlan,
    attempt_folder,
    authorize_url,
    classify_error,
    consent_outcome,
)
from scopematrix.flow.sessions import SharedLogins, shared_logins_dir

__all__ = [
    "FlowOptions",
    "Harness",
    "LoginFailure",
    "SharedLogins",
    "Walk",
    "WalkPlan",
    "attempt_folder",
    "authorize_url",
    "classify_error",
    "consent_outcome",
    "shared_logins_dir",
]
