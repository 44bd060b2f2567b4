"""Storage: SQLAlchemy 2 (async) over SQLite (embedded default) or PostgreSQL.

Modules: ``database`` (URL handling, engine, ``Database``), ``tables`` (the
schema), ``migrations`` (Alembic, run programmatically), ``errors``. This
package's ``__init__`` imports nothing heavy, so that importing an error class
does not load SQLAlchemy.
"""
