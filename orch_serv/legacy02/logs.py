"""The default logger of 0.2-style objects.

orch_serv 0.2 called ``logging.basicConfig(level=logging.INFO)`` when it was imported and
gave every object a stand-alone ``logging.Logger`` outside the logging hierarchy. Here nothing
is configured at import time, and the default is an ordinary named logger
(``orch_serv.legacy02``), so the application's logging configuration applies to it.
"""

from __future__ import annotations

import logging

DEFAULT_LOGGER = logging.getLogger("orch_serv.legacy02")

__all__ = ["DEFAULT_LOGGER"]
