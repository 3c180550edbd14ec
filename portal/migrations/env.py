import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from portal.migrations.carry_over import VERSION_TABLE, carry_over
from portal.migrations.compare import compare_type

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
# Keep the app's own loggers (rq, dispatcher, …) working when migrations run in-process.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    # The app's registered database (the host's own, embedded), not Flask-Migrate's: a host
    # may have no Flask-Migrate, or one of its own for its own migrations.
    from dispatcher.store import registered

    return registered(current_app).engine


def get_engine_url():
    return get_engine().url.render_as_string(hide_password=False).replace("%", "%%")


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option("sqlalchemy.url", get_engine_url())

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    from dispatcher.models import Base

    return Base.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=get_metadata(),
        literal_binds=True,
        version_table=VERSION_TABLE,
        include_name=include_name,
    )

    with context.begin_transaction():
        context.run_migrations()


def include_name(name, type_, parent_names):
    """Autogenerate looks at Hookline's tables only: a host's tables in the same database are
    neither Hookline's to drop nor to alter."""
    if type_ == "table":
        return name.startswith("hookline_") and name != VERSION_TABLE
    return True


def render_item(type_, obj, autogen_context):
    """Write Hookline's UTCDateTime as a plain timezone-aware DateTime in migrations."""
    from dispatcher.models.types import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    # Hookline's own arguments only: a host's Flask-Migrate configures the host's migrations.
    conf_args = {
        "compare_type": compare_type,  # Alembic's, but for string lengths on SQLite
        "render_as_batch": True,
        "render_item": render_item,
        "process_revision_directives": process_revision_directives,
        "include_name": include_name,
        "version_table": VERSION_TABLE,
    }

    connectable = get_engine()
    # Hookline's history has a table of its own (VERSION_TABLE), so a host's `alembic_version`
    # is never read or written; a database that kept ours there is carried over first.
    carry_over(connectable, {script.revision for script in context.script.walk_revisions()})

    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
