"""pvyhs on an external PostgreSQL given in Synapse's `database` format."""
import glob
import os
import subprocess
import time

from harness import BIN, ROOT, Server, free_port
from pgserver import PgServer


def test_external_database_works_the_same():
    pg = PgServer().start()
    try:
        dsn = f"""database:
  name: psycopg2
  args:
    user: synapse_user
    password: "p'w d"
    database: pvyhs_ext
    host: 127.0.0.1
    port: {pg.port}
    cp_min: 2
    cp_max: 4
"""
        with Server(dsn_yaml=dsn) as s:
            s.add_user("ext")            # the CLI uses the external database too
            s.start()
            tok = s.login("ext")
            r = s.request("GET", "/_matrix/client/v3/account/whoami", token=tok)
            assert r.status == 200
            assert pg.sql("SELECT count(*) FROM users", db="pvyhs_ext") == "1"
            newest = max(int(os.path.basename(f)[:3]) for f in glob.glob(os.path.join(ROOT, "sql", "[0-9]*.sql")))
            assert pg.sql("SELECT max(version) FROM schema_version", db="pvyhs_ext") == str(newest)
            assert s.stop() == 0
            # A schema newer than the binary knows is refused.
            pg.sql("INSERT INTO schema_version (version, name) VALUES (999, '999_future')",
                   db="pvyhs_ext")
            r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 1 and "newer" in r.stderr, r.stderr
    finally:
        pg.stop()


def test_unreachable_external_database_retries_then_exits_1():
    port = free_port()  # nothing listens there
    dsn = f"""database:
  name: psycopg2
  args: {{host: 127.0.0.1, port: {port}, user: x, database: y}}
  connect_retry_seconds: 3
"""
    with Server(dsn_yaml=dsn) as s:
        t0 = time.time()
        r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1
        assert "retrying" in r.stderr and "cannot connect to PostgreSQL" in r.stderr, r.stderr
        assert time.time() - t0 >= 3
