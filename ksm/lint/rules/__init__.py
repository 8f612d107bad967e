"""The linter's rules, one module per category; importing this package registers them all."""
from . import bindings, conditions, flow, kernel, names, objects, processes  # noqa: F401
