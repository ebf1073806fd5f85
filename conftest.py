"""This project's own fixtures, for the tests a QA engineer writes beside the matrix (tests/examples/).

The scopematrix plugin brings the building blocks: `sm_target`, `authorize`, `signed_in_context` and
`signed_in_page` (see README "Your own tests"). Fixtures that know this project's users and apps go here.
"""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def super_admin_page(signed_in_page: Callable[[str], Any]) -> Any:
    """The matrix's super admin, signed in: the user every install is compared with."""
    return signed_in_page("super-admin")
