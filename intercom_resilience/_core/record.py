"""Records: the values a call builds on its way (outcomes, conclusions, effects, verdicts).

A record is read-only by contract, and the type checker holds everyone to it: ``@record`` is a
``dataclass_transform`` whose fields are frozen by default, so ``mypy --strict`` rejects an
assignment to one. At run time it is a plain slotted dataclass (with the hash a frozen one would
have), because every call builds half a dozen of them and a frozen dataclass's ``__init__`` sets
each field through ``object.__setattr__``: 3.7 and 5.5 times the cost of a slotted one (8 fields:
1,087 vs 293 ns on one machine, 595 vs 109 ns on another), which on the hot path was an eighth of
what the whole pipeline adds to a call (see ``benchmarks/instructions.py``).

Configuration stays truly frozen (``dataclasses.dataclass(frozen=True)``): it is public, built
once, and a user's code must not be able to change a policy under a running client.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # The type checker is the only reader of the transform (Python 3.10's typing lacks it, and
    # typing_extensions is not a dependency of ours).
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_options: Any) -> Any:
        return lambda decorator: decorator


__all__ = ["record"]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[_T]) -> type[_T]:
    """Make *cls* a record: a slotted dataclass, hashable by value, read-only to type checkers."""
    return dataclasses.dataclass(slots=True, unsafe_hash=True)(cls)
