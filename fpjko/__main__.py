"""`python3 -m fpjko ...` is the `fpjko` command."""

import sys

from fpjko.cli import main

sys.exit(main())
