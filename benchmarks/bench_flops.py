"""Training FLOP/s achieved, as a fraction of this CPU's peak for its precision.

For the default ``EmnistCNN``, the default ``EmnistMLP`` and the three-block
recipe ``EmnistCNN(filters=(32, 64, 128), convs_per_block=1,
block_dropout=0)``:

- **FLOPs per image per training step**, counted from the fitted Keras
  network itself (:func:`layer_flops`): Conv2D ``2*kh*kw*cin*cout*H_out*W_out``
  (divided by ``groups``), DepthwiseConv2D and SeparableConv2D likewise,
  Dense ``2*in*out`` (per position if its input has more axes). The backward
  pass computes two gradients of each such layer, each with the forward
  pass's multiply-adds: the weight gradient always, the input gradient for
  every layer but the one that reads the network's input (nothing needs its
  gradient; TensorFlow prunes it). So a step costs 3x the forward pass less
  one forward pass of that first layer (:func:`train_flops_per_image`);
  ``3 x forward`` (bench_recipes' convention) is reported beside it.
  Biases, activations, dropout, pooling, the loss and the Adam update are
  not counted: they are O(activations) or O(parameters / batch), not
  multiply-adds, and are the "non-convolution" share of bench_profile.
- **The CPU's peak** (:func:`cpu_peak`): cores available to this process
  (``os.sched_getaffinity``) x float32 FMA lanes per core per cycle (from the
  vector-width flags and a per-vendor table of FMA units, stated in the
  output) x 2 FLOP per FMA x GHz (``cpuinfo_max_freq`` where the kernel has
  cpufreq, else ``/proc/cpuinfo``'s "cpu MHz"); bfloat16 (AVX512-BF16's
  VDPBF16PS: two bfloat16 products per float32 lane) counts 2x the float32
  peak; AMX is not counted.
- **A measured peak**: the median GFLOP/s of a 4096x4096 @ 4096x4096
  ``tf.matmul`` in float32 (and bfloat16 where the CPU has it) in a fresh
  process, alternating with the training runs.
- **Achieved**: each model trains on the first ``--n`` bymerge test images
  (upright, as bench_profile) for 3 epochs in ``precision="auto"`` and in
  ``precision="float32"`` (forced: a stand-in for a CPU without bfloat16);
  FLOP/s = FLOPs per image per step x training images / median seconds of
  the epochs after the first.

The load average (``os.getloadavg``) is recorded before and after every
measurement: other work on the same cores lowers both achieved and measured
figures.

Run: ``python -m benchmarks.bench_flops [--n 20000] [--repeats 2]``; the
FLOP counting's self-check: ``python -m doctest benchmarks/bench_flops.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from benchmarks._child import EpochTimer, mark_baseline
from benchmarks._harness import Case, alternate, bymerge_test_files, write_results

#: The models measured: name -> estimator keyword arguments.
MODELS = {
    "EmnistCNN()": ("EmnistCNN", {}),
    "EmnistCNN(filters=(32, 64, 128), convs_per_block=1, block_dropout=0)": (
        "EmnistCNN",
        {"filters": [32, 64, 128], "convs_per_block": 1, "block_dropout": 0},
    ),
    "EmnistMLP()": ("EmnistMLP", {}),
}


def layer_flops(model) -> list[dict]:
    """FLOPs of one image's forward pass through each multiply-add layer.

    Walks ``model.layers`` (and nested models) of a built Keras network.
    Each entry: ``name``, ``kind`` (the layer's class), ``flops`` (2 x its
    multiply-adds per image) and ``reads_input`` (the layer's input is the
    network's input, so no gradient with respect to it is computed).

    Parameters
    ----------
    model : keras.Model
        A built functional or sequential network.

    Returns
    -------
    list of dict
        One entry per Conv2D, DepthwiseConv2D, SeparableConv2D or Dense
        layer, in the network's order.

    Examples
    --------
    A 3x3 convolution of one channel to 2 filters on a 4x4 'same' grid
    (2*3*3*1*2*4*4 = 576) and a Dense layer of 32 inputs to 3 units (192):

    >>> import keras
    >>> inputs = keras.Input((4, 4, 1))
    >>> x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    >>> outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    >>> model = keras.Model(inputs, outputs)
    >>> [(e["kind"], e["flops"], e["reads_input"]) for e in layer_flops(model)]
    [('Conv2D', 576, True), ('Dense', 192, False)]
    >>> train_flops_per_image(model)  # 576 * 2 + 192 * 3
    1728
    """
    import keras

    out: list[dict] = []
    input_ids = {id(t) for t in model.inputs}

    def walk(layers, inputs: set[int]) -> None:
        for layer in layers:
            if isinstance(layer, keras.Model):
                walk(layer.layers, inputs | {id(t) for t in layer.inputs})
                continue
            flops = _forward_flops(keras, layer)
            if flops is None:
                continue
            # reads the network's input: directly, or through layers with no
            # weights (Reshape, Rescaling, augmentation), which need no gradient
            reads_input = not any(
                _has_multiply_adds(keras, upstream)
                for upstream in _upstream_layers(layer, inputs)
            )
            out.append(
                {
                    "name": layer.name,
                    "kind": type(layer).__name__,
                    "flops": int(flops),
                    "reads_input": reads_input,
                }
            )

    walk(model.layers, input_ids)
    return out


def _forward_flops(keras, layer) -> int | None:
    layers = keras.layers
    if isinstance(layer, layers.SeparableConv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1]
        depth = c_in * layer.depth_multiplier
        return 2 * h * w * (kh * kw * depth + depth * c_out)
    if isinstance(layer, layers.DepthwiseConv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        return 2 * h * w * kh * kw * c_out
    if isinstance(layer, layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1] // layer.groups
        return 2 * h * w * kh * kw * c_in * c_out
    if isinstance(layer, layers.Dense):
        positions = 1
        for size in layer.input.shape[1:-1]:
            positions *= size
        return 2 * positions * layer.input.shape[-1] * layer.units
    return None


def _has_multiply_adds(keras, layer) -> bool:
    return _forward_flops(keras, layer) is not None or bool(layer.trainable_weights)


def _upstream_layers(layer, inputs: set[int]) -> list:
    """Every layer between the network's inputs and ``layer``'s input."""
    seen: dict[int, object] = {}
    stack = [layer.input] if not isinstance(layer.input, list) else list(layer.input)
    while stack:
        tensor = stack.pop()
        if id(tensor) in inputs:
            continue
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        upstream = history[0]
        if id(upstream) in seen:
            continue
        seen[id(upstream)] = upstream
        node_input = upstream.input
        stack.extend(node_input if isinstance(node_input, list) else [node_input])
    return list(seen.values())


def train_flops_per_image(model) -> int:
    """FLOPs of one training step, per image: forward plus both gradients.

    Each multiply-add layer's forward FLOPs x 3 (forward, weight gradient,
    input gradient), but x 2 for a layer that reads the network's input (its
    input gradient is never computed). See :func:`layer_flops`.

    Parameters
    ----------
    model : keras.Model
        A built network.

    Returns
    -------
    int
        FLOPs per image per step.
    """
    return sum(
        entry["flops"] * (2 if entry["reads_input"] else 3)
        for entry in layer_flops(model)
    )


# --- the CPU's peak ---------------------------------------------------------


def cpu_info() -> dict:
    """What ``/proc/cpuinfo`` says of the first processor, and the cores given.

    Returns
    -------
    dict
        ``vendor``, ``family``, ``model``, ``model_name``, ``flags`` (set),
        ``mhz`` and where it came from, ``threads`` (CPUs this process may
        run on) and ``smt`` (hardware threads per core).
    """
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    mhz, mhz_source = float(fields.get("cpu MHz", "nan")), "/proc/cpuinfo cpu MHz"
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_freq.is_file():
        mhz, mhz_source = int(max_freq.read_text()) / 1000, "cpufreq cpuinfo_max_freq"
    threads = len(os.sched_getaffinity(0))
    siblings = int(fields.get("siblings", "1") or 1)
    cores = int(fields.get("cpu cores", "1") or 1)
    return {
        "vendor": fields.get("vendor_id", platform.processor()),
        "family": int(fields.get("cpu family", "0") or 0),
        "model": int(fields.get("model", "0") or 0),
        "model_name": fields.get("model name", platform.processor()),
        "flags": set(fields.get("flags", "").split()),
        "mhz": mhz,
        "mhz_source": mhz_source,
        "threads": threads,
        "smt": max(1, siblings // max(1, cores)),
    }


def fp32_fma_lanes_per_cycle(info: dict) -> tuple[int, str]:
    """Float32 FMA lanes one core retires per cycle, and the assumption made.

    The flags give the vector width; how many FMA units a core has they do
    not, so it comes from this table by vendor and family.

    Parameters
    ----------
    info : dict
        :func:`cpu_info`'s answer.

    Returns
    -------
    (int, str)
        Lanes per cycle per core, and the rule that gave it.

    Examples
    --------
    >>> zen4 = {"vendor": "AuthenticAMD", "family": 25, "model": 17,
    ...         "flags": {"avx2", "fma", "avx512f"}}
    >>> fp32_fma_lanes_per_cycle(zen4)[0]
    16
    >>> fp32_fma_lanes_per_cycle({**zen4, "flags": {"avx2", "fma"}})[0]
    16
    >>> skx = {"vendor": "GenuineIntel", "family": 6, "model": 85,
    ...        "flags": {"avx2", "fma", "avx512f"}}
    >>> fp32_fma_lanes_per_cycle(skx)[0]
    32
    """
    flags, vendor, family = info["flags"], info["vendor"], info["family"]
    if vendor == "AuthenticAMD" and family == 25 and "avx512f" in flags:
        return 16, (
            "AMD Zen 4 (family 25, avx512f): 2 x 256-bit FMA pipes, AVX-512 "
            "executes as 2 x 256-bit, so 16 fp32 FMA lanes per cycle"
        )
    if vendor == "AuthenticAMD" and family == 26:
        return 32, "AMD Zen 5 (family 26): 2 x 512-bit FMA pipes assumed (server)"
    if vendor == "AuthenticAMD" and family in (23, 25) and "fma" in flags:
        if family == 23 and info["model"] < 0x30:
            return 8, "AMD Zen 1 (family 23, model < 0x30): 2 x 128-bit FMA pipes"
        return 16, "AMD Zen 2/3 (family 23/25, AVX2 + FMA): 2 x 256-bit FMA pipes"
    if "avx512f" in flags:
        return 32, (
            "AVX-512 (avx512f): 16 fp32 lanes x 2 FMA units (Intel server "
            "cores; some Xeon Silver/Bronze and client cores have 1)"
        )
    if "avx2" in flags and "fma" in flags:
        return 16, "AVX2 + FMA: 8 fp32 lanes x 2 FMA units"
    return 4, "no FMA flags: 4 fp32 lanes, one multiply-add per cycle assumed"


def cpu_peak(info: dict | None = None) -> dict:
    """Theoretical float32 and bfloat16 peak GFLOP/s of the cores given.

    Parameters
    ----------
    info : dict, default=None
        :func:`cpu_info`'s answer; default this machine's.

    Returns
    -------
    dict
        ``float32_gflops``, ``bfloat16_gflops`` (None without bfloat16
        instructions), ``lanes`` (fp32 FMA lanes per core-cycle), ``cores``
        (physical cores among those given), the ``rule`` (how it was
        computed) and the CPU's description.
    """
    info = info or cpu_info()
    lanes, assumption = fp32_fma_lanes_per_cycle(info)
    cores = max(1, info["threads"] // info["smt"])
    ghz = info["mhz"] / 1000
    fp32 = cores * lanes * 2 * ghz
    bf16 = 2 * fp32 if "avx512_bf16" in info["flags"] else None
    flags_used = sorted(
        info["flags"] & {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}
    )
    rule = (
        f"{cores} cores x {lanes} fp32 FMA lanes/cycle x 2 FLOP x {ghz:.2f} GHz "
        f"= {fp32:.0f} GFLOP/s float32 ({assumption}; GHz from "
        f"{info['mhz_source']}, the clock the kernel reports - turbo may be "
        "higher)"
    )
    if bf16:
        rule += (
            f"; bfloat16 {bf16:.0f} GFLOP/s = 2 x float32 (avx512_bf16: "
            "VDPBF16PS does 2 bfloat16 multiply-adds per fp32 lane, assumed at "
            "the FMA's throughput)"
        )
    if "amx_bf16" in info["flags"]:
        rule += (
            "; AMX (amx_bf16) not counted: Intel quotes 1,024 bfloat16 "
            "FLOP/cycle/core for it, 4x AVX-512 bfloat16 - compare with the "
            "measured matmul instead"
        )
    if info["smt"] > 1:
        rule += f"; {info['threads']} CPUs given are {info['smt']}-way SMT threads"
    return {
        "float32_gflops": fp32,
        "bfloat16_gflops": bf16,
        "lanes": lanes,
        "cores": cores,
        "rule": rule,
        "cpu": (
            f"{info['model_name']} ({info['vendor']} family {info['family']} "
            f"model {info['model']}), {info['threads']} CPUs given, "
            f"{ghz:.2f} GHz, flags {' '.join(flags_used)}"
        ),
    }


# --- the measurements (child processes) -------------------------------------


def matmul_gflops(*, size: int, dtype: str, calls: int = 5) -> dict:
    """Median GFLOP/s of a ``size`` square ``tf.matmul`` in ``dtype``; in the child."""
    import tensorflow as tf

    load = os.getloadavg()[0]
    a = tf.random.stateless_uniform((size, size), (0, 1), dtype=tf.float32)
    b = tf.random.stateless_uniform((size, size), (0, 2), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    mark_baseline()
    tf.matmul(a, b).numpy()  # warm-up: oneDNN picks and builds its kernel
    times, cpu_times = [], []
    for _ in range(calls):
        start, cpu = time.perf_counter(), time.process_time()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    return {
        "gflops": 2 * size**3 / statistics.median(times) / 1e9,
        "gflops_per_cpu_second": 2 * size**3 / statistics.median(cpu_times) / 1e9,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def epoch_flops(*, model: str, precision: str, n: int, epochs: int = 3) -> dict:
    """Train ``MODELS[model]`` on ``n`` images; time its epochs; in the child."""
    import emnist_estimators
    from emnist_estimators.datasets import read_idx

    load = os.getloadavg()[0]
    files = bymerge_test_files()
    # stored transposed, like NIST's files: upright for the network
    X = read_idx(files["images"])[:n].transpose(0, 2, 1).reshape(-1, 784)
    y = read_idx(files["labels"])[:n]
    cls, kwargs = MODELS[model]
    timer = EpochTimer()
    mark_baseline()
    clf = getattr(emnist_estimators, cls)(
        **kwargs, epochs=epochs, random_state=0, precision=precision
    )
    clf.fit(X, y, callbacks=[timer.callback()])
    entries = layer_flops(clf.model_)
    return {
        "train_flops": train_flops_per_image(clf.model_),
        "forward_flops": sum(e["flops"] for e in entries),
        # the images one epoch trains on: fit holds out validation_fraction
        "images_per_epoch": round(n * (1 - clf.validation_fraction)),
        "seconds_per_epoch": statistics.median(timer.wall[1:]),
        "cpu_seconds_per_epoch": statistics.median(timer.cpu[1:]),
        "policy": str(clf.dtype_policy_),
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="training images")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each case")
    parser.add_argument("--matmul-size", type=int, default=4096, help="matmul side")
    args = parser.parse_args(argv)
    peak = cpu_peak()
    cases = {
        "matmul float32": Case(
            "bench_flops.matmul_gflops", {"size": args.matmul_size, "dtype": "float32"}
        )
    }
    if peak["bfloat16_gflops"]:
        cases["matmul bfloat16"] = Case(
            "bench_flops.matmul_gflops",
            {"size": args.matmul_size, "dtype": "bfloat16"},
        )
    for model in MODELS:
        for precision in ("auto", "float32"):
            cases[f"{model}|{precision}"] = Case(
                "bench_flops.epoch_flops",
                {"model": model, "precision": precision, "n": args.n},
            )
    runs = alternate(cases, args.repeats)
    loads = [
        r[k] for rs in runs.values() for r in rs for k in ("load_before", "load_after")
    ]
    measured = {
        dtype: statistics.median(r["gflops"] for r in runs[f"matmul {dtype}"])
        for dtype in ("float32", "bfloat16")
        if f"matmul {dtype}" in runs
    }
    measured_cpu = {
        dtype: statistics.median(
            r["gflops_per_cpu_second"] for r in runs[f"matmul {dtype}"]
        )
        for dtype in measured
    }
    rows = []
    for name, results in runs.items():
        if name.startswith("matmul"):
            continue
        model, precision = name.split("|")
        first = results[0]
        # mixed_bfloat16 computes in bfloat16: its peak is bfloat16's
        dtype = "bfloat16" if "bfloat16" in first["policy"] else "float32"
        seconds = statistics.median(r["seconds_per_epoch"] for r in results)
        cpu_seconds = statistics.median(r["cpu_seconds_per_epoch"] for r in results)
        flops_per_epoch = first["train_flops"] * first["images_per_epoch"]
        achieved = flops_per_epoch / seconds / 1e9
        per_cpu_second = flops_per_epoch / cpu_seconds / 1e9
        theoretical = peak[f"{dtype}_gflops"]
        matmul = measured.get(dtype)
        rows.append(
            {
                "model": model,
                "precision": f"{precision} -> {first['policy']}",
                "train MFLOP/image": round(first["train_flops"] / 1e6, 1),
                "3 x forward MFLOP": round(3 * first["forward_flops"] / 1e6, 1),
                "epoch s": round(seconds, 2),
                "epoch CPU s": round(cpu_seconds, 2),
                "GFLOP/s achieved": round(achieved, 1),
                "theoretical peak GFLOP/s": round(theoretical, 0),
                "fraction of peak": f"{100 * achieved / theoretical:.1f}%",
                "matmul GFLOP/s": None if matmul is None else round(matmul, 1),
                "fraction of matmul": (
                    None if matmul is None else f"{100 * achieved / matmul:.1f}%"
                ),
                "GFLOP per CPU s": round(per_cpu_second, 1),
                "fraction of one core's peak": (
                    f"{100 * per_cpu_second * peak['cores'] / theoretical:.1f}%"
                ),
                "fraction of matmul per CPU s": (
                    None
                    if matmul is None
                    else f"{100 * per_cpu_second / measured_cpu[dtype]:.1f}%"
                ),
                "runs": results,  # each process's figures: the JSON file only
            }
        )
    for dtype, gflops in measured.items():
        per_cpu_second = statistics.median(
            r["gflops_per_cpu_second"] for r in runs[f"matmul {dtype}"]
        )
        theoretical = peak[f"{dtype}_gflops"]
        rows.append(
            {
                "model": f"tf.matmul {args.matmul_size}^2 x {args.matmul_size}^2",
                "precision": dtype,
                "GFLOP/s achieved": round(gflops, 1),
                "theoretical peak GFLOP/s": round(theoretical, 0),
                "fraction of peak": f"{100 * gflops / theoretical:.1f}%",
                "GFLOP per CPU s": round(per_cpu_second, 1),
                "fraction of one core's peak": (
                    f"{100 * per_cpu_second * peak['cores'] / theoretical:.1f}%"
                ),
                "runs": runs[f"matmul {dtype}"],
            }
        )
    # A busy core cannot beat its peak: the float32 matmul's FLOPs per CPU
    # second bound the clock it really ran at from below.
    implied_ghz = statistics.median(
        r["gflops_per_cpu_second"] for r in runs["matmul float32"]
    ) / (2 * peak["lanes"])
    write_results(
        "bench_flops",
        rows,
        command="python -m benchmarks.bench_flops " + " ".join(argv or sys.argv[1:]),
        notes=(
            f"CPU: {peak['cpu']}. Theoretical peak: {peak['rule']}. Measured "
            f"peak: median of 5 {args.matmul_size}x{args.matmul_size} tf.matmul "
            f"calls after a warm-up, {args.repeats} fresh processes. Training: "
            f"the first {args.n:,} bymerge test images upright, 3 epochs, "
            "seed 0, the held-out validation_fraction not trained on; epoch s "
            f"= median of epochs 2-3, median of {args.repeats} fresh processes "
            "alternating with the others. train MFLOP/image: the Conv2D/Dense "
            "multiply-adds x 2 of the forward pass x 3 (forward, weight and "
            "input gradients), less the input gradient of the layer reading "
            "the network's input; '3 x forward' is bench_recipes' rounder "
            "rule. GFLOP/s achieved = train MFLOP/image x images per epoch / "
            "epoch s; the fraction columns divide it by the peak of the "
            "precision the convolutions compute in (mixed_bfloat16: "
            "bfloat16). GFLOP per CPU s: the same FLOPs over the process's "
            "CPU seconds (all threads; spin-waits included), against one "
            "core's peak: much less affected by other work on the cores than "
            "wall-clock figures. The float32 matmul's GFLOP per CPU s implies "
            f"a clock of at least {implied_ghz:.2f} GHz (at 100% of "
            f"{2 * peak['lanes']} FLOP/cycle). Load average (1 min) over the "
            f"run: {min(loads):.1f}-{max(loads):.1f} on {peak['cores']} cores."
        ),
    )


if __name__ == "__main__":
    main()
