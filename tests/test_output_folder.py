"""Output folders: ``--overwrite`` replaces only what this package wrote (issue 11.1).

Every test runs with a temporary home and a temporary current directory, so a
bug here can only ever delete files the test made.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from emnist_estimators import cli
from emnist_estimators.output_folder import (
    MANIFEST_NAME,
    OutputFolderError,
    check_output_folder,
    output_folder,
    read_manifest,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temp home with a temp cwd inside it: <tmp>/home/work."""
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home


def user_folder(path):
    path.mkdir(parents=True)
    (path / "thesis.tex").write_text("my own work")
    return path


def our_output(path, text="first"):
    with output_folder(path, command="test") as tmp:
        (tmp / "metrics.json").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "fig.png").write_text("png")
    return path


def snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a command gets as far as loading data or training."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command loaded data before refusing its output")

    monkeypatch.setattr(cli.loading, "load_data", refuse)
    import emnist_estimators.datasets.digits as digits

    monkeypatch.setattr(digits, "load_digits_28", refuse)


# --- the rule, unit by unit --------------------------------------------------------
def test_new_output_gets_a_manifest_of_its_files(home):
    out = our_output(home / "work" / "run")
    manifest = read_manifest(out)
    assert manifest["written_by"] == "emnist-estimators"
    assert manifest["files"] == ["metrics.json", "sub/fig.png"]
    assert sorted(os.listdir(home / "work")) == ["run"]  # no temp sibling left


def test_overwrite_replaces_our_own_output_only_when_complete(home):
    out = our_output(home / "work" / "run")
    with pytest.raises(RuntimeError, match="boom"):
        with output_folder(out, overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("half")
            raise RuntimeError("boom")
    assert (out / "metrics.json").read_text() == "first"  # previous output intact
    assert sorted(os.listdir(home / "work")) == ["run"]
    with output_folder(out, overwrite=True) as tmp:
        (tmp / "metrics.json").write_text("second")
    assert (out / "metrics.json").read_text() == "second"
    assert not (out / "sub").exists()
    assert sorted(os.listdir(home / "work")) == ["run"]


def test_existing_folder_needs_overwrite(home):
    out = our_output(home / "work" / "run")
    with pytest.raises(OutputFolderError, match="already exists.*--overwrite"):
        check_output_folder(out)


def test_unrelated_folder_is_never_replaced(home):
    mine = user_folder(home / "work" / "data")
    before = snapshot(mine)
    with pytest.raises(OutputFolderError, match="not written by emnist-estimators"):
        with output_folder(mine, overwrite=True):
            pass
    assert snapshot(mine) == before


def test_our_folder_with_user_files_added_is_not_replaced(home):
    out = our_output(home / "work" / "run")
    (out / "notes.txt").write_text("added by the user")
    with pytest.raises(OutputFolderError, match="did not write.*notes.txt"):
        check_output_folder(out, overwrite=True)
    assert (out / "notes.txt").exists()


@pytest.mark.parametrize(
    "target, reason",
    [
        (".", "current directory"),
        ("..", "home folder"),
        ("~", "home folder"),
        ("../..", "contains the current directory"),
        ("/", "root of the file system"),
    ],
)
def test_cwd_home_parents_and_root_are_refused_even_with_a_manifest(
    home, target, reason
):
    (home / "work" / MANIFEST_NAME).write_text(
        json.dumps({"written_by": "emnist-estimators", "files": []})
    )
    (home / MANIFEST_NAME).write_text((home / "work" / MANIFEST_NAME).read_text())
    with pytest.raises(OutputFolderError, match=reason):
        check_output_folder(target, overwrite=True)


def test_dot_dot_path_names_the_parent_and_is_refused(home):
    proj = user_folder(home / "work" / "proj")
    (proj / "sub").mkdir()
    before = snapshot(proj)
    with pytest.raises(OutputFolderError, match="not written by emnist-estimators"):
        check_output_folder("proj/sub/..", overwrite=True)
    assert snapshot(proj) == before


def test_file_and_symlink_outputs_are_refused(home):
    target = home / "work" / "model.keras"
    target.write_text("a file")
    with pytest.raises(OutputFolderError, match="is a file"):
        check_output_folder(target, overwrite=True)
    out = our_output(home / "work" / "run")
    link = home / "work" / "link"
    link.symlink_to(out)
    with pytest.raises(OutputFolderError, match="symbolic link"):
        check_output_folder(link, overwrite=True)
    assert target.read_text() == "a file" and (out / "metrics.json").exists()


def test_failed_output_removes_the_parents_it_created(home):
    with pytest.raises(RuntimeError):
        with output_folder(home / "work" / "a" / "b" / "run"):
            raise RuntimeError("training failed")
    assert os.listdir(home / "work") == []


def _killed_writer(folder, *, set_aside=False):
    """Run a writer into ``folder`` that SIGKILLs itself mid-write; its pid.

    With ``set_aside`` it dies after setting the previous output aside,
    before moving the new one in.
    """
    code = f"""
import os, signal
from pathlib import Path
from emnist_estimators import output_folder as of
if {set_aside}:
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        if ".old-" in str(dst):
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
with of.output_folder(Path({str(folder)!r}), overwrite=True) as tmp:
    (tmp / "metrics.json").write_text("half")
    if not {set_aside}:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    return proc


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_run(home):
    """Issue 30.10: train's hidden ``.<name>.tmp-*`` folder after SIGKILL."""
    work = home / "work"
    _killed_writer(work / "run")
    left = os.listdir(work)
    assert len(left) == 1 and left[0].startswith(".run.tmp-"), left
    # a look-alike of the user's, and a live writer's (our parent), stay
    mine = user_folder(work / ".run.tmp-mine")
    live = work / f".run.tmp-{os.getppid()}@{left[0].split('@')[1]}"
    live.mkdir()
    with output_folder(work / "run") as tmp:
        (tmp / "metrics.json").write_text("second")
    assert sorted(os.listdir(work)) == sorted(["run", mine.name, live.name])
    assert (work / "run" / "metrics.json").read_text() == "second"


def test_a_previous_output_set_aside_by_a_killed_writer_is_kept(home):
    """Killed between the two renames: the old folder is the only copy left."""
    work = home / "work"
    our_output(work / "run")
    _killed_writer(work / "run", set_aside=True)
    assert not (work / "run").exists()
    old = [n for n in os.listdir(work) if n.startswith(".run.old-")]
    assert len(old) == 1
    with output_folder(work / "run") as tmp:  # the next run keeps the old one
        (tmp / "metrics.json").write_text("second")
    assert (work / old[0] / "metrics.json").read_text() == "first"
    assert sorted(os.listdir(work)) == sorted(["run", old[0]])
    with output_folder(work / "run", overwrite=True) as tmp:  # now garbage
        (tmp / "metrics.json").write_text("third")
    assert os.listdir(work) == ["run"]


# --- the commands refuse before loading data or training ------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--dataset", "digits", "--output", "{out}", "--overwrite"],
        [
            "report",
            "{model}",
            "--dataset",
            "digits",
            "--output",
            "{out}",
            "--overwrite",
        ],
        ["demo", "--output", "{out}", "--overwrite"],
        ["demo", "--output", "{out}"],
        ["tune", "--dataset", "digits", "--output", "{out}"],
    ],
)
def test_commands_refuse_unrelated_folders_before_work(home, no_training, argv, capsys):
    mine = user_folder(home / "work" / "results")
    before = snapshot(mine)
    model = home / "work" / "model.keras"
    model.write_bytes(b"PK")
    code = cli.main([a.format(out=mine, model=model) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "results" in err and ("not written by" in err or "already exists" in err)
    assert snapshot(mine) == before


@pytest.mark.parametrize("output", [".", "..", "~"])
def test_train_refuses_cwd_and_home(home, no_training, output, capsys):
    assert (
        cli.main(["train", "--dataset", "digits", "--output", output, "--overwrite"])
        == 2
    )
    assert "Refusing" in capsys.readouterr().err
    assert (home / "work").is_dir()


def test_train_refuses_a_file_output_before_training(home, no_training, capsys):
    (home / "work" / "out").write_text("keep")
    assert (
        cli.main(["train", "--dataset", "digits", "--output", "out", "--overwrite"])
        == 2
    )
    assert "is a file" in capsys.readouterr().err
    assert (home / "work" / "out").read_text() == "keep"


def test_failed_tune_leaves_nothing(home, capsys):
    code = cli.main(
        [
            "tune",
            "--dataset",
            "digits",
            "--max-samples",
            "200",
            "--n-trials",
            "1",
            "--epochs",
            "1",
            "--output",
            "tuning/run",
            "--no-plots",
            "--quiet",
            "--storage",
            "postgresql://nobody:pw@127.0.0.1:1/none",
        ]
    )
    assert code == 1, capsys.readouterr().err
    assert os.listdir(home / "work") == []
