"""pgserver.py — a throwaway PostgreSQL server on a loopback TCP port, for the
tests of pvyhs against an external database."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from harness import Disposable, free_port


def _bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return dirs[-1]


class PgServer(Disposable):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pvyhs-extpg-")
        self._dispose_with(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        # PostgreSQL refuses to run as root: use the embedded cluster's user.
        self.user = "pvyhs" if os.geteuid() == 0 else None
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", self.user], check=True)
            shutil.chown(self.dir, self.user, self.user)

    def _as_user(self, argv):
        return (["runuser", "-u", self.user, "--"] + argv) if self.user else argv

    def start(self):
        data = os.path.join(self.dir, "data")
        subprocess.run(self._as_user([_bindir() + "/initdb", "-D", data, "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--locale=C"]),
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(self._as_user(
            [_bindir() + "/postgres", "-D", data, "-p", str(self.port), "-c",
             "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                "-c", "SELECT 1"], capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        self.sql("CREATE ROLE synapse_user LOGIN PASSWORD 'p''w d'")
        self.sql("CREATE DATABASE pvyhs_ext OWNER synapse_user")
        return self

    def sql(self, q, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-At", "-c", q], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)
