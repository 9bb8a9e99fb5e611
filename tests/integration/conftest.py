import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Server  # noqa: E402


@pytest.fixture(scope="session")
def server():
    """One pvyhs on its own embedded PostgreSQL, shared by the tests that
    don't care about start and stop."""
    s = Server().start()
    yield s
    rc = s.stop()
    assert rc == 0, "pvyhs did not exit cleanly on SIGTERM:\n" + s.read_log()
    # Sanitizer reports end up in the server log; any is a failure.
    log = s.read_log()
    assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log
