"""Alembic's migrations, shipped in the wheel as ``payhook.migrations`` (see pyproject.toml)."""
