"""`python -m ksm.cli`: the same command as `ksm`."""
import sys

from ksm.cli import main

sys.exit(main())
