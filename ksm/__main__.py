"""`python -m ksm`: the same command as `ksm`."""
import sys

from ksm.cli import main

sys.exit(main())
