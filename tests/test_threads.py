"""TensorFlow's thread pools: sized to the cores given at first use, with knobs.

Importing the package changes nothing in the process (no environment
variable, no TensorFlow setting); the first fit, predict, load_model or
unpickling sizes the pools, unless the program already did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

from emnist_estimators import set_num_threads
from emnist_estimators.threads import _cgroup_cpu_quota, available_cpus

# The smallest first use: a one-epoch fit of a 2-unit network on 4 samples.
FIT = (
    "clf = e.EmnistMLP(hidden_layer_sizes=(2,), epochs=1, validation_fraction=0)\n"
    "clf.fit([[0] * 4, [255] * 4] * 2, [0, 1, 0, 1])\n"
)
POOLS = (
    "import tensorflow as tf\n"
    "t = tf.config.threading\n"
    "print(t.get_intra_op_parallelism_threads(),\n"
    "      t.get_inter_op_parallelism_threads())\n"
)
PROBE = "import emnist_estimators as e, sys\n{before}\n" + FIT + POOLS


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter; an env value of None removes it."""
    # None removes a variable, so the caller's environment cannot leak in.
    base = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    env = {**base, "PYTHONPATH": str(REPO), **env}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def probe(before="", **env):
    return run_python(PROBE.format(before=before), **env)


def pools(proc):
    assert proc.returncode == 0, proc.stderr
    return tuple(int(v) for v in proc.stdout.split()[-2:])


def test_default_uses_the_cores_this_process_may_use():
    proc = probe(EMNIST_ESTIMATORS_THREADS=None)
    assert pools(proc) == (available_cpus(), available_cpus())


# --- issue 12.5: nothing at import; the pools are sized at first use ---------
IMPORT_THEN_FIT = (
    "import json, os, pickle, sys\n"
    # what the dependencies themselves set when imported is not ours
    "import numpy, scipy, sklearn, tensorflow as tf, keras, scikeras.wrappers\n"
    "t = tf.config.threading\n"
    "pools = lambda: [t.get_intra_op_parallelism_threads(),\n"
    "                 t.get_inter_op_parallelism_threads()]\n"
    "env = dict(os.environ)\n"
    "import emnist_estimators as e\n"
    "import emnist_estimators.estimators, emnist_estimators.base\n"
    "import emnist_estimators.persistence, emnist_estimators.threads\n"
    "keys = {{*env, *os.environ}}\n"
    "changed = sorted(k for k in keys if env.get(k) != os.environ.get(k))\n"
    "at_import = pools()\n" + FIT + "pickle.dump(clf, open({pkl!r}, 'wb'))\n"
    "clf.save({keras!r})\n"
    "print(json.dumps({{'changed': changed, 'at_import': at_import,\n"
    "                  'after_fit': pools()}}))\n"
)


@pytest.fixture(scope="module")
def first_use(tmp_path_factory):
    """A fresh process: import, then a first fit; plus its pickle and save."""
    tmp = tmp_path_factory.mktemp("first_use")
    pkl, keras_file = tmp / "clf.pkl", tmp / "clf.keras"
    code = IMPORT_THEN_FIT.format(pkl=str(pkl), keras=str(keras_file))
    proc = run_python(code, EMNIST_ESTIMATORS_THREADS=None, TF_CPP_MIN_LOG_LEVEL=None)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), pkl, keras_file


def test_import_changes_no_environment_variable(first_use):
    report, _, _ = first_use
    # TF_CPP_MIN_LOG_LEVEL was set by the package's import before
    assert report["changed"] == []


def test_import_leaves_tensorflow_thread_pools_unset(first_use):
    report, _, _ = first_use
    assert report["at_import"] == [0, 0]  # 0: not set


def test_first_fit_sizes_the_pools(first_use):
    report, _, _ = first_use
    assert report["after_fit"] == [available_cpus(), available_cpus()]


@pytest.mark.parametrize(
    "load",
    [
        "clf = pickle.load(open({pkl!r}, 'rb'))",
        "clf = e.load_model({keras!r})",
    ],
    ids=["unpickle", "load_model"],
)
def test_loading_a_fitted_estimator_sizes_the_pools_first(first_use, load):
    """The loaded network starts TensorFlow: the pools must be sized before."""
    _, pkl, keras_file = first_use
    code = (
        "import pickle, emnist_estimators as e\n"
        + load.format(pkl=str(pkl), keras=str(keras_file))
        + "\nassert clf.predict([[255] * 4]).shape == (1,)\n"
        + POOLS
    )
    proc = run_python(code, EMNIST_ESTIMATORS_THREADS=None)
    assert pools(proc) == (available_cpus(), available_cpus())


@pytest.mark.parametrize("explicit", [False, True])
def test_pools_the_program_sized_itself_are_kept(explicit):
    """tf.config.threading before the first fit wins over the default; an
    explicit request to the package (set_num_threads) wins over both."""
    mine = available_cpus() + 1  # differs from the default
    before = (
        "import tensorflow as tf\n"
        f"tf.config.threading.set_intra_op_parallelism_threads({mine})\n"
        + ("e.set_num_threads(1)\n" if explicit else "")
    )
    intra, inter = pools(probe(before, EMNIST_ESTIMATORS_THREADS=None))
    if explicit:
        assert (intra, inter) == (1, 1)
    else:
        assert (intra, inter) == (mine, available_cpus())


def test_environment_variable_sets_both_pools():
    assert pools(probe(EMNIST_ESTIMATORS_THREADS="1")) == (1, 1)


def test_set_num_threads_before_first_fit():
    assert pools(probe("e.set_num_threads(3)", EMNIST_ESTIMATORS_THREADS=None)) == (
        3,
        3,
    )


def test_tensorflow_own_variables_are_respected():
    proc = probe(EMNIST_ESTIMATORS_THREADS=None, TF_NUM_INTRAOP_THREADS="1")
    intra, inter = pools(proc)
    # 0 = not overridden: TensorFlow reads its own variable when it starts.
    assert intra == 0 and inter == available_cpus()


def test_too_late_is_a_clear_error():
    code = (
        "import tensorflow as tf; tf.constant(1.0) + 1\n"
        "import emnist_estimators as e; e.EmnistMLP\n"
        "try:\n    e.set_num_threads(7)\n"
        "except RuntimeError as exc:\n    print('ERR', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EMNIST_ESTIMATORS_THREADS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERR TensorFlow already started" in proc.stdout
    assert "before the first fit" in proc.stdout


@pytest.mark.parametrize("bad", [0, -2, 2.5, "two", True, None])
def test_bad_thread_counts(bad):
    with pytest.raises(ValueError, match="positive whole number of threads"):
        set_num_threads(bad)


def test_bad_environment_variable_names_it():
    proc = probe(EMNIST_ESTIMATORS_THREADS="lots")
    assert proc.returncode != 0
    assert "EMNIST_ESTIMATORS_THREADS must be a positive whole number" in proc.stderr


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        (
            {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"},
            2.0,
        ),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _cgroup_cpu_quota(tmp_path) == expected


def test_available_cpus_within_affinity():
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


def test_cli_threads_option(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emnist_estimators",
            "--threads",
            "0",
            "data",
            "info",
            "--data-home",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "positive whole number of threads" in proc.stderr


# --- upper bound (issue 11.5): a huge count is refused before TensorFlow starts ---
def test_too_many_threads_are_refused_with_the_limit():
    from emnist_estimators.threads import MAX_THREADS_PER_CPU, _validate, max_threads

    limit = MAX_THREADS_PER_CPU * available_cpus()
    assert max_threads() == limit
    # The limit itself is accepted (checked without applying it: this
    # process's TensorFlow may have started already).
    assert _validate(limit, "n") == limit
    with pytest.raises(ValueError, match=rf"at most {limit}"):
        set_num_threads(limit + 1)
    with pytest.raises(ValueError, match="asks for 100000 threads"):
        set_num_threads(100000)


def test_too_many_threads_from_the_environment_fail_before_tensorflow():
    code = (
        "import sys, resource, emnist_estimators as e\n"
        "try:\n    e.EmnistMLP(epochs=1).fit([[0] * 784] * 4, [0, 1, 0, 1])\n"
        "except ValueError as exc:\n    print('ERR', exc)\n"
        # VmHWM: ru_maxrss would include the parent's RSS at fork
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]\n"
        "print('MAXRSS_MB', int(hwm[0].split()[1]) // 1024)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "EMNIST_ESTIMATORS_THREADS": "100000"}
    env = {k: v for k, v in env.items() if not k.startswith("TF_NUM_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERR EMNIST_ESTIMATORS_THREADS asks for 100000 threads" in proc.stdout
    # TensorFlow never created the threads: memory stays that of an import
    # (100000 threads took 19.7 GB before the limit).
    rss = int(proc.stdout.split("MAXRSS_MB")[-1])
    assert rss < 2000, proc.stdout


def test_cli_refuses_too_many_threads(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "emnist_estimators",
            "--threads",
            "100000",
            "data",
            "info",
            "--data-home",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "asks for 100000 threads" in proc.stderr and "at most" in proc.stderr


@pytest.mark.parametrize(
    "quota, expected", [(None, 8), (1.5, 2), (0.2, 1), (3.0, 3), (64.0, 8)]
)
def test_cgroup_quota_caps_the_affinity_mask(monkeypatch, quota, expected):
    """A container quota of 1.5 CPUs on an 8-CPU mask gives 2 threads, not 8."""
    import emnist_estimators.threads as threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(threads, "_cgroup_cpu_quota", lambda: quota)
    assert threads.available_cpus() == expected
    assert threads.max_threads() == 4 * expected
