"""`python -m ksm.cli`: the same command as `ksm`."""
from ksm.cli import console

console()
