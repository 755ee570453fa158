"""``emnist-estimators data``: download EMNIST, show what is present, clean caches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from sklearn.utils import Bunch

from ..datasets import (
    clean_cache,
    get_data_home,
    how_to_get,
    load_emnist,
    split_summary,
    user_cache_dir,
)
from ..datasets.summary import data_info
from .console import EXIT_ERROR, EXIT_OK, emit

__all__ = ["run_data"]


def run_data(args) -> int:
    """Run ``data download``, ``data info`` or ``data clean``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit code: 1 when ``info --checksums`` finds a mismatch, else 0.
    """
    if args.data_command == "clean":
        return _clean(args)
    if args.data_command == "download":
        return _download(args)
    rows = data_info(args.data_home, checksums=args.checksums)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(_info_text(args, rows))
    bad = [r for r in rows if r["sha256_ok"] is False]
    return EXIT_ERROR if bad else EXIT_OK


def _clean(args) -> int:
    removed = clean_cache(args.data_home, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    size = (
        sum(p.stat().st_size for p in removed if p.exists()) if args.dry_run else None
    )
    lines = [str(p) for p in removed] + [
        f"{verb} {len(removed)} file(s)"
        + (f", {size / 2**20:,.1f} MiB" if size is not None else "")
    ]
    emit(
        args,
        {
            "dry_run": args.dry_run,
            verb.replace(" ", "_"): [str(p) for p in removed],
        },
        "\n".join(lines),
    )
    return EXIT_OK


def _download(args) -> int:
    bunch = cast(
        Bunch,
        load_emnist(
            args.split,
            args.subset,
            data_home=args.data_home,
            url=args.url,
            progress=not (args.quiet or args.json),
        ),
    )
    folder = Path(bunch.files[0].images).parent
    emit(
        args,
        {
            "split": args.split,
            "subset": args.subset,
            "n_samples": len(bunch.target),
            "n_classes": len(bunch.target_names),
            "folder": str(folder),
        },
        f"EMNIST {args.split}/{args.subset}: {len(bunch.target):,} images, "
        f"{len(bunch.target_names)} classes, files in {folder}",
    )
    return EXIT_OK


def _split_lines(home, summary) -> list[str]:
    """``data info``'s per-split table: status, then cache size or files needed."""
    where = "" if home.is_dir() else " (the folder does not exist)"
    lines = [f"EMNIST splits in {home}{where}:"]
    lines.append(f"  {'split':<9}{'part':<6}{'status':<9}cache, or files needed")
    for row in summary:
        if row["missing"]:
            detail = "needs " + ", ".join(row["missing"])
        elif row["cache_bytes"]:
            detail = f"cache {row['cache_bytes'] / 2**20:,.1f} MiB"
        elif row.get("other_caches"):  # a same-named file's, in another folder
            detail = "no cache of these files yet (the user cache's is of a copy "
            detail += "in another folder)"
        else:
            detail = "no cache yet"
        lines.append(f"  {row['split']:<9}{row['subset']:<6}{row['status']:<9}{detail}")
    return lines


def _file_lines(home, rows) -> list[str]:
    """``data info``'s file list: a heading, column names, one line per file."""
    lines = [f"Files in {home} and the user cache ({user_cache_dir() / 'npy'}):"]
    if not rows:
        return [*lines, "  (none)"]
    width = max(len(row["path"]) for row in rows)
    checked = "checksum" if any(row["sha256_ok"] is not None for row in rows) else ""
    lines.append(f"{'bytes':>12}  {'path':<{width}}  {'kind':<7}  {checked}")
    for row in rows:
        check = {True: "sha256 ok", False: "sha256 MISMATCH", None: ""}[
            row["sha256_ok"]
        ]
        lines.append(
            f"{row['size']:>12,}  {row['path']:<{width}}  {row['kind']:<7}  {check}"
        )
    return [line.rstrip() for line in lines]


def _info_text(args, rows) -> str:
    """``data info``'s text: the files found, the split table, how to get data."""
    home = get_data_home(args.data_home)
    summary = split_summary(args.data_home)
    lines = [*_file_lines(home, rows), ""]
    lines += _split_lines(home, summary)
    if not any(row["status"] == "complete" for row in summary):
        hint = how_to_get(data_home=args.data_home)
        lines.append(f"No complete EMNIST split in {home}.\n{hint}")
    return "\n".join(lines)
