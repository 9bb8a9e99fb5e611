"""The `pvyhs` command line and the server's life: first start, init, config
check, user add, signals, sd_notify, and every start-up failure we promise a
clear message for."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness import BIN, Server, free_port, http, run_cli


def test_help_and_usage_exit_codes():
    assert run_cli("--help").returncode == 0
    for cmd in (["serve"], ["init"], ["config", "check"], ["user", "add"]):
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0 and "usage: pvyhs" in r.stdout, cmd
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("init").returncode == 2          # missing required options
    assert run_cli("user", "add").returncode == 2


def test_init_writes_config_and_key_and_refuses_overwrite(tmp_path):
    cfgp = tmp_path / "hs.yaml"
    r = run_cli("init", "--server-name", "example.org", "--data-dir", str(tmp_path / "d"),
                "--config", str(cfgp))
    assert r.returncode == 0, r.stderr
    key = (tmp_path / "example.org.signing.key").read_text().split()
    assert key[0] == "ed25519" and key[1].startswith("a_") and len(key[2]) == 43
    assert oct((tmp_path / "example.org.signing.key").stat().st_mode & 0o777) == "0o600"
    r = run_cli("config", "check", "--config", str(cfgp))
    assert r.returncode == 0 and "valid" in r.stdout
    before = cfgp.read_text()
    r = run_cli("init", "--server-name", "other.org", "--data-dir", "x", "--config", str(cfgp))
    assert r.returncode == 1 and "not overwriting" in r.stderr
    assert cfgp.read_text() == before


def test_config_check_reports_every_problem_with_lines(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("server_name: 'ok.example'\n"
                 "enable_registration: 'maybe'\n"
                 "listeners:\n"
                 "  - port: 99999\n"
                 "    resources: [{names: [client]}]\n"
                 "no_such_key: 1\n")
    r = run_cli("config", "check", "--config", str(p))
    assert r.returncode == 2
    out = r.stdout
    assert f"{p}:2: error: enable_registration" in out, out
    assert f"{p}:4: error: listeners" in out and "port" in out, out
    assert f"{p}:6: warning: no_such_key" in out, out


def test_serve_refuses_invalid_config(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("server_name: [not, a, string]\n")
    r = run_cli("serve", "--config", str(p))
    assert r.returncode == 2 and f"{p}:1" in r.stderr
    assert not (tmp_path / "data").exists()  # nothing was started or written
    r = run_cli("serve", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2


def test_first_start_without_config_then_warm_start():
    d = tempfile.mkdtemp(prefix="pvyhs-first-")
    os.chmod(d, 0o755)
    port_busy = socket.socket()
    port_busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        port_busy.bind(("127.0.0.1", 8008))
    except OSError:
        pytest.fail("port 8008 is taken on this machine; the quick start needs it")
    finally:
        port_busy.close()
    for warm in (False, True):
        t0 = time.time()
        p = subprocess.Popen([BIN, "serve"], cwd=d, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            while True:
                assert p.poll() is None, p.stdout.read().decode()
                try:
                    if http("http://localhost:8008", "GET", "/_matrix/client/versions",
                            timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.05)
                assert time.time() - t0 < 90
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(60) == 0
        assert os.path.exists(os.path.join(d, "homeserver.yaml"))
        assert os.path.exists(os.path.join(d, "localhost.signing.key"))
        assert os.path.exists(os.path.join(d, "data", "pg", "data", "PG_VERSION"))
        assert not os.path.exists(os.path.join(d, "data", "pg", "data", "postmaster.pid"))
    subprocess.run(["rm", "-rf", d])


def test_sigint_and_sd_notify_and_postgres_stops():
    with Server() as s:
        sock_path = os.path.join(s.dir, "notify.sock")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(sock_path)
        ns.settimeout(90)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        s.log = open(s.log_path, "ab")
        s.proc = subprocess.Popen([BIN, "serve", "--config", s.config], stdout=s.log,
                                  stderr=s.log, env=env)
        assert ns.recv(100) == b"READY=1"
        assert s.request("GET", "/health").status == 200  # READY means listening
        pid_file = os.path.join(s.dir, "data", "pg", "data", "postmaster.pid")
        pg_pid = int(open(pid_file).read().split()[0])
        assert s.stop(signal.SIGINT) == 0
        assert ns.recv(100) == b"STOPPING=1"
        assert not os.path.exists(pid_file)
        with pytest.raises(ProcessLookupError):
            os.kill(pg_pid, 0)


def test_second_serve_refused_and_port_in_use():
    with Server() as a:
        a.start()
        r = subprocess.run([BIN, "serve", "--config", a.config], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and "already serving" in r.stderr
        assert a.request("GET", "/health").status == 200
        with Server() as b:
            with open(b.config) as f:
                text = f.read()
            with open(b.config, "w") as f:
                f.write(text.replace(f"port: {b.port}", f"port: {a.port}"))
            r = subprocess.run([BIN, "serve", "--config", b.config], capture_output=True,
                               text=True, timeout=90)
            assert r.returncode == 1 and "already in use" in r.stderr, r.stderr
            # The embedded PostgreSQL it started was stopped again.
            assert not os.path.exists(os.path.join(b.dir, "data", "pg", "data", "postmaster.pid"))


def test_user_add_running_and_stopped():
    with Server() as s:
        # Stopped: the CLI starts the cluster briefly and stops it again.
        uid = s.add_user("stopped", admin=True)
        assert not os.path.exists(os.path.join(s.dir, "data", "pg", "data", "postmaster.pid"))
        s.start()
        assert s.login("stopped")
        # Running: it attaches to the server's cluster.
        r = run_cli("user", "add", "--config", s.config, "running", "--password-file", "-",
                    input="s3cret\n")
        assert r.returncode == 0, r.stderr
        assert s.login("running", password="s3cret")
        r = run_cli("user", "add", "--config", s.config, "running", "--password", "x")
        assert r.returncode == 1 and "taken" in r.stderr
        r = run_cli("user", "add", "--config", s.config, "Bad Name!", "--password", "x")
        assert r.returncode == 2 and "user names" in r.stderr
        assert s.psql(f"SELECT admin FROM users WHERE user_id = '{uid}'") == "t"
        assert s.stop() == 0


def test_crash_recovery_adopts_or_restarts_postgres():
    with Server() as s:
        s.start()
        s.add_user("survivor")
        s.proc.kill()  # SIGKILL: postgres is left running, orphaned
        s.proc.wait()
        s.log.close()
        s.start()
        assert s.login("survivor")
        s.proc.kill()
        s.proc.wait()
        s.log.close()
        pid_file = os.path.join(s.dir, "data", "pg", "data", "postmaster.pid")
        os.kill(int(open(pid_file).read().split()[0]), signal.SIGKILL)  # now a stale pid file
        time.sleep(0.5)
        s.start()
        assert s.login("survivor")
        assert s.stop() == 0


def test_unwritable_data_dir_and_missing_postgres(tmp_path):
    with Server(extra_yaml="") as s:
        with open(s.config) as f:
            text = f.read()
        with open(s.config, "w") as f:
            f.write(text.replace("data_dir: data", "data_dir: /proc/pvyhs-nope"))
        r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and "not writable" in r.stderr, r.stderr
    with Server() as s:
        r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, PVYHS_PG_BINDIR="/nonexistent"))
        assert r.returncode == 1 and "PostgreSQL server binaries not found" in r.stderr


def test_tls_listener(tmp_path):
    """A listener with tls: true serves HTTPS with the configured certificate."""
    import ssl
    import urllib.request
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", str(key), "-out", str(cert)], capture_output=True)
    assert r.returncode == 0, r.stderr
    extra = f"tls_certificate_path: {cert}\ntls_private_key_path: {key}\n"
    with Server(extra_yaml=extra) as s:
        with open(s.config) as f:
            text = f.read()
        with open(s.config, "w") as f:
            f.write(text.replace("    type: http\n", "    type: http\n    tls: true\n"))
        s.base = f"https://localhost:{s.port}"
        s.log = open(s.log_path, "ab")
        s.proc = subprocess.Popen([BIN, "serve", "--config", s.config], stdout=s.log, stderr=s.log)
        ctx = ssl.create_default_context(cafile=str(cert))
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(s.base + "/_matrix/client/versions", context=ctx,
                                            timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.time() < deadline and s.proc.poll() is None, s.read_log()
                time.sleep(0.1)
        # plain HTTP on the TLS port is refused
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{s.port}/health", timeout=2).read()
        assert s.stop() == 0
