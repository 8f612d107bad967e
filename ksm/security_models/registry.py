"""Model name (as in ``policy object x : Flow``) → its implementation."""
from __future__ import annotations

import functools

from . import SecurityModel


@functools.lru_cache(maxsize=None)
def _impls() -> dict[str, SecurityModel]:
    from .arith import MathModel
    from .base import BaseModel
    from .boolean import BoolModel
    from .flow import FlowModel
    from .hashset import HashSetModel
    from .mic import MicModel
    from .pred import PredModel
    from .regex import RegexModel
    from .staticmap import StaticMapModel
    from .struct import StructModel

    return {m.name: m for m in (BaseModel(), PredModel(), BoolModel(), MathModel(), StructModel(), RegexModel(),
                                HashSetModel(), StaticMapModel(), FlowModel(), MicModel())}


def model_impl(name: str) -> SecurityModel:
    return _impls()[name]
