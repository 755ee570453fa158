"""Two worker processes tune one study through a real PostgreSQL server.

The server is started by the test on a free loopback port in a temporary
folder (initdb + pg_ctl, as the ``postgres`` user when running as root) and
stopped afterwards. Skipped, with the reason, only where the PostgreSQL
server binaries or the psycopg driver are not installed - and failed instead
under ``CI=true``, whose ``.ci/run`` installs both.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from helpers import REPO, skip_unless_ci, write_idx_folder


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(run, bindir: Path, data: Path, folder: Path) -> int:
    """Start the server on a free port; retry with another if it was taken.

    The free port is released before the server binds it, so another
    process may take it in between: then pg_ctl fails and we try again.
    """
    for attempt in range(5):
        port = _free_port()
        try:
            run(
                bindir / "pg_ctl",
                "-D",
                data,
                "-l",
                folder / "log",
                "-w",
                "-o",
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
                "start",
            )
            return port
        except subprocess.CalledProcessError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def postgres_url():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_unless_ci("PostgreSQL driver psycopg (v3) is not installed")
    bindir = _pg_bin()
    if bindir is None:
        skip_unless_ci(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
            "install the Debian package 'postgresql'"
        )
    as_postgres = []
    folder = Path(tempfile.mkdtemp(prefix="emnist-pg-", dir="/tmp"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    run = lambda *cmd: subprocess.run(  # noqa: E731
        [*as_postgres, *map(str, cmd)], check=True, capture_output=True, text=True
    )
    try:
        run(
            bindir / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        port = _start_server(run, bindir, data, folder)
        run(
            bindir / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-U",
            "postgres",
            "optuna",
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "fast",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow  # two worker processes, 17 s
def test_two_workers_share_one_study(postgres_url, tmp_path):
    data = write_idx_folder(tmp_path / "bars", n_train=240, n_test=30)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emnist_estimators",
                "tune",
                "--model",
                "mlp",
                "--dataset",
                str(data),
                "--n-trials",
                "4",
                "--epochs",
                "2",
                "--param",
                "hidden_layer_sizes=(16,)",
                "--storage",
                postgres_url,
                "--study-name",
                "shared",
                "--resume",
                "--no-plots",
                "--quiet",
                "--output",
                str(tmp_path / f"worker{i}"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in workers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(8))  # exact count, none lost or doubled
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert len({t._trial_id for t in study.trials}) == 8


def test_storage_with_heartbeats_warns_nothing(tmp_path):
    """Issue 13.1: optuna's ExperimentalWarning for heartbeats on every tune."""
    import warnings

    from emnist_estimators.tuning import make_storage

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage = make_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert storage.heartbeat_interval == 60 and storage.grace_period == 120
    # scoped: the caller's own optuna calls still warn as optuna wants
    with pytest.warns(optuna.exceptions.ExperimentalWarning, match="heartbeat"):
        optuna.storages.RDBStorage(
            f"sqlite:///{tmp_path / 'other.db'}", heartbeat_interval=5
        )


def test_hide_password_masks_only_the_password():
    from emnist_estimators.tuning import hide_password

    url = "postgresql://me:s3cret@db.example:5432/optuna"
    assert hide_password(url) == "postgresql://me:***@db.example:5432/optuna"
    assert hide_password("journal:study.log") == "journal:study.log"
