"""The ``crembo`` command line: ``demo``, ``compress``, ``evaluate``, ``export``
and ``paper`` (:mod:`~crembo.cli.commands`; regression in
:mod:`~crembo.cli.regression`)."""

from .commands import main

__all__ = ["main"]
