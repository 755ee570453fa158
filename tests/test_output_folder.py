"""Output folders: ``--overwrite`` replaces only what this package wrote (issue 11.1).

Every test runs with a temporary home and a temporary current directory, so a
bug here can only ever delete files the test made.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emnist_estimators import cli
from emnist_estimators.output_folder import (
    MANIFEST_NAME,
    OutputFolderError,
    check_output_folder,
    output_folder,
    prepare_reusable,
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


# --- what a refusal says, which manifests are trusted, the swap (issue 16) ---
def _metrics_output(path: Path, files=("metrics.json",)) -> Path:
    with output_folder(path, command="test") as tmp:
        for name in files:
            (tmp / name).write_text(name)
    return path


def _write_manifest(folder: Path, **fields) -> None:
    manifest = {"written_by": "emnist-estimators", "files": ["metrics.json"], **fields}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _swap_spy(monkeypatch, fail_move_in=None):
    """Record the renames; optionally fail the one that moves the new output in."""
    real_replace, calls = os.replace, []

    def replace(src, dst, *args, **kwargs):
        src, dst = Path(src), Path(dst)
        calls.append((src, dst))
        if fail_move_in is not None and src.name.startswith(f".{dst.name}.tmp-"):
            raise fail_move_in
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return calls


@pytest.mark.parametrize(
    "target, reason",
    [
        (".", "it is the current directory"),
        ("..", "it is your home folder"),
        ("../..", "it contains the current directory"),
        ("/", "it is the root of the file system"),
    ],
)
def test_a_refusal_says_exactly_why(home, target, reason):
    with pytest.raises(OutputFolderError) as info:
        check_output_folder(target, overwrite=True)
    assert f": {reason}. Choose a new --output." in str(info.value)


def test_a_folder_holding_the_home_folder_is_refused(tmp_path, monkeypatch):
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(OutputFolderError) as info:
        check_output_folder(tmp_path / "users", overwrite=True)
    assert ": it contains your home folder. Choose" in str(info.value)


def test_a_refusal_says_whether_it_would_replace_or_write_into(home):
    mine = home / "work" / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("my own work")
    with pytest.raises(OutputFolderError, match=r"Refusing to replace .*mine: it"):
        check_output_folder(mine, overwrite=True)
    with pytest.raises(OutputFolderError, match=r"Refusing to write into .*mine: it"):
        prepare_reusable(mine, command="tune")
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize(
    "n, shown",
    [(5, "(a1, a2, a3, a4, a5)."), (6, "(a1, a2, a3, a4, a5 ...).")],
)
def test_a_refusal_names_at_most_five_user_files(home, n, shown):
    out = _metrics_output(home / "work" / "run")
    for i in range(n, 0, -1):
        (out / f"a{i}").write_text("the user's")
    with pytest.raises(OutputFolderError) as info:
        check_output_folder(out, overwrite=True)
    assert f"did not write {shown} Move them out" in str(info.value)


def test_a_symlink_the_user_added_counts_as_their_file(home, tmp_path):
    out = _metrics_output(home / "work" / "run")
    (tmp_path / "datasets").mkdir()
    (out / "data").symlink_to(tmp_path / "datasets", target_is_directory=True)
    with pytest.raises(OutputFolderError, match=r"did not write \(data\)"):
        check_output_folder(out, overwrite=True)
    assert (out / "data").is_symlink()


@pytest.mark.parametrize(
    "manifest",
    [
        [],  # JSON, but not an object
        {"written_by": "another-tool", "files": ["metrics.json"]},
        {"written_by": "emnist-estimators", "files": "metrics.json"},
        {"written_by": "emnist-estimators", "files": ["metrics.json", 3]},
    ],
    ids=["list", "other-writer", "files-not-a-list", "file-not-a-string"],
)
def test_a_manifest_that_is_not_ours_allows_no_overwrite(home, manifest):
    out = _metrics_output(home / "work" / "run")
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert read_manifest(out) is None
    with pytest.raises(OutputFolderError, match="not written by emnist-estimators"):
        check_output_folder(out, overwrite=True)
    assert (out / "metrics.json").exists()


def test_a_symlinked_manifest_is_not_trusted(home, tmp_path):
    out = _metrics_output(home / "work" / "run")
    elsewhere = tmp_path / "manifest.json"
    elsewhere.write_text((out / MANIFEST_NAME).read_text())
    (out / MANIFEST_NAME).unlink()
    (out / MANIFEST_NAME).symlink_to(elsewhere)
    assert read_manifest(out) is None
    with pytest.raises(OutputFolderError, match="not written by"):
        check_output_folder(out, overwrite=True)


@pytest.mark.parametrize("size, trusted", [(1 << 20, True), ((1 << 20) + 1, False)])
def test_a_manifest_over_one_mib_is_not_trusted(home, size, trusted):
    out = _metrics_output(home / "work" / "run")
    text = json.dumps({"written_by": "emnist-estimators", "files": ["metrics.json"]})
    (out / MANIFEST_NAME).write_text(text + " " * (size - len(text)))
    assert (out / MANIFEST_NAME).stat().st_size == size
    assert (read_manifest(out) is not None) is trusted


def test_the_previous_output_is_set_aside_next_to_it(home, monkeypatch):
    out = _metrics_output(home / "work" / "run")
    calls = _swap_spy(monkeypatch)
    with output_folder(out, overwrite=True) as tmp:
        (tmp / "metrics.json").write_text("second")
    # a rename within the folder (never a copy to another file system), to
    # a hidden name that no other output uses
    aside = next(dst for src, dst in calls if src == out)
    assert aside.parent == out.parent and aside.name.startswith(".run.old-")
    assert (out / "metrics.json").read_text() == "second"
    assert sorted(os.listdir(home / "work")) == ["run"]


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(errno.EIO, "I/O")])
def test_a_failed_swap_puts_the_previous_output_back(home, monkeypatch, error):
    out = _metrics_output(home / "work" / "run")
    _swap_spy(monkeypatch, fail_move_in=error)
    with pytest.raises(type(error)):
        with output_folder(out, overwrite=True) as tmp:
            (tmp / "metrics.json").write_text("second")
    assert (out / "metrics.json").read_text() == "metrics.json"
    assert sorted(os.listdir(home / "work")) == ["run"]


def test_an_undeletable_previous_output_does_not_fail_the_command(home, monkeypatch):
    """NFS keeps a file that is still open as ``.nfsXXXX`` and refuses to
    delete it: the new output is in place, so the command succeeds."""
    out = _metrics_output(home / "work" / "run")
    (out / ".nfs0000000000ab12").write_text("still open elsewhere")
    _write_manifest(out, files=["metrics.json", ".nfs0000000000ab12"])
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if os.path.basename(path).startswith(".nfs"):
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    with output_folder(out, overwrite=True) as tmp:
        (tmp / "metrics.json").write_text("second")
    assert (out / "metrics.json").read_text() == "second"
    assert not (out / ".nfs0000000000ab12").exists()
