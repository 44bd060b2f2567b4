"""Shared test support (no tests in here): data paths, the day the test clock
starts on, database backend records, real-photo helpers and stand-in plugins.

Test modules import it as ``support`` (pytest puts ``tests/`` on ``sys.path``
because ``tests/`` is not a package); no test module imports another test
module or ``conftest``.
"""
