"""`python -m scopematrix.cli`: the same as the `scopematrix` command."""

import sys

from scopematrix.cli import main

sys.exit(main())
