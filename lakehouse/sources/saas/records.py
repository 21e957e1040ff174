"""A tiny struct-of-arrays base for queues of pending things (payment retries, open tickets)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial
from typing import Self

import numpy as np

# default_factory values for empty columns: ``x: np.ndarray = field(default_factory=INT64)``.
INT32 = partial(np.zeros, 0, dtype=np.int32)
INT64 = partial(np.zeros, 0, dtype=np.int64)
FLOAT64 = partial(np.zeros, 0, dtype=np.float64)


@dataclass
class Records:
    """Parallel 1-d arrays, one per dataclass field; a default instance is empty."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def take(self, selector: np.ndarray) -> Self:
        """Rows selected by a boolean mask or an index array, as a new instance."""
        return type(self)(**{f.name: getattr(self, f.name)[selector] for f in fields(self)})

    def extend(self, other: Self) -> Self:
        """This instance's rows followed by ``other``'s."""
        return type(self)(
            **{
                f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )
