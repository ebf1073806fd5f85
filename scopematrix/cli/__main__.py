"""`python -m scopematrix.cli`: the same as the `scopematrix` command."""

import sys

from scopematrix.cli import entry

sys.exit(entry())
