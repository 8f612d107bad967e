"""`python -m ksm`: the same command as `ksm`."""
from ksm.cli import console

console()
