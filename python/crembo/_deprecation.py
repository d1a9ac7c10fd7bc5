"""The warning of crembo's deprecations.

A deprecated name keeps working and warns with
:class:`CremboDeprecationWarning`: a ``DeprecationWarning`` (Python's category
for deprecations) that is also a ``FutureWarning`` (scikit-learn's category
for them), so a filter or a test on either catches it.
"""

from __future__ import annotations

import warnings

__all__ = ["CremboDeprecationWarning", "warn_renamed"]


class CremboDeprecationWarning(DeprecationWarning, FutureWarning):
    """A crembo name is deprecated; the message names its replacement."""


def warn_renamed(owner: str, old: str, new: str, *, stacklevel: int = 2) -> None:
    """Warn that ``owner``'s parameter ``old`` is deprecated in favour of
    ``new``; ``stacklevel`` counts from the caller of this function."""
    warnings.warn(
        f"{owner}: {old} is deprecated and will be removed; use {new}",
        CremboDeprecationWarning,
        stacklevel=stacklevel + 1,
    )
