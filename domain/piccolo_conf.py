"""Piccolo's configuration module (``PICCOLO_CONF=domain.piccolo_conf``).

``DB`` is the engine Piccolo's migration machinery uses. The running app replaces it with its
own engine (:func:`domain.db.Database.bind`); the ``piccolo`` CLI gets the engine for
``DROPSYNC_DATABASE_URL``.
"""

import os
from typing import Any

from piccolo.conf.apps import AppRegistry
from piccolo.engine.base import Engine

from domain.db import engine_for_url

DB: Engine[Any] = engine_for_url(os.environ.get("DROPSYNC_DATABASE_URL", "sqlite:///./dropsync.db"))
APP_REGISTRY = AppRegistry(apps=["domain.piccolo_app"])
