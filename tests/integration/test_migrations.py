"""The migrated schema equals the models, on both backends; migrations run twice harmlessly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from payhook.db.engine import create_engine
from payhook.db.migrate import upgrade_async
from payhook.db.tables import Base


async def test_migrated_schema_matches_the_models(database_url):
    await upgrade_async(database_url)  # already at head: a second run changes nothing
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata))
    finally:
        await engine.dispose()
    assert differences == []
