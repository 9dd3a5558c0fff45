"""`python -m crdtedge` is the `crdtedge` command."""

import sys

from .cli import main

sys.exit(main())
