"""The Piccolo app that owns dropsync's tables; its migrations live in the top-level ``migrations/``."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from domain.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="dropsync",
    migrations_folder_path=str(Path(__file__).resolve().parent.parent / "migrations"),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
    commands=[],
)
