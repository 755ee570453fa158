"""EMNIST data: readers for IDX, CSV and MATLAB files, a cache and a downloader.

The main entry point is :func:`load_emnist`; the readers are public for files
that live outside the usual layout.
"""

from ._official import EMNIST_SPLITS, OFFICIAL_FILES, OFFICIAL_URL
from .cache import user_cache_dir
from .download import download_members, download_split
from .loader import (
    clean_cache,
    default_mapping,
    find_split_files,
    get_data_home,
    how_to_get,
    load_emnist,
)
from .readers import (
    idx_header,
    read_emnist_csv,
    read_emnist_mat,
    read_idx,
    read_mapping,
    transpose_images,
    write_idx,
)
from .summary import split_summary

__all__ = [
    "EMNIST_SPLITS",
    "OFFICIAL_FILES",
    "OFFICIAL_URL",
    "clean_cache",
    "default_mapping",
    "download_members",
    "download_split",
    "find_split_files",
    "get_data_home",
    "how_to_get",
    "idx_header",
    "load_emnist",
    "read_emnist_csv",
    "read_emnist_mat",
    "read_idx",
    "read_mapping",
    "split_summary",
    "transpose_images",
    "user_cache_dir",
    "write_idx",
]
