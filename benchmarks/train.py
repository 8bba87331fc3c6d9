"""Training throughput (images/s after compilation) of learn's models on this machine.

For each model and image size, trains on random images (batch 64 by default) and
reports images per second after the first (compiling) call, for a ladder of variants:

``nnx_jit``      the straightforward step: ``nnx.jit`` over the model and optimiser
                 objects (NNX graph traversal each call), XLA convolutions;
``split_xla``    ``jax.jit`` over ``nnx.split`` state (:func:`learn.train.make_train_call`),
                 donated buffers, XLA convolutions;
``split_gemm``   the same with im2col + matrix-product convolutions (the default);
``steps4_xla``   ``split_xla`` with 4 steps per jitted call (unrolled);
``steps4_gemm``  ``split_gemm`` with 4 steps per jitted call;
``steps4_data``  ``steps4_gemm`` fed by the real input pipeline (augmentation and
                 normalisation in a background thread, :func:`learn.sources.prefetch`);
``split_wino``   ``split_gemm`` with Winograd F(2x2, 3x3) convolutions where they apply;
``steps4_wino``  ``steps4_gemm`` likewise;
``split_auto``   ``split_xla`` with the convolutions of ``conv_impl="auto"`` (what a run
                 uses: gemm on a CPU, XLA's on an accelerator);
``steps4_auto``  ``steps4_xla`` likewise.

The ``*_auto`` variants are not in the default ladder; the device check
(``benchmarks/device_check.sh``) times ``split_auto`` on a GPU, at several batch sizes
(``--batch-size 64 256``), against the same network in PyTorch
(``benchmarks/train_torch.py``). The timed batches are held on the device (put there
once, outside the timed region), except in ``steps4_data``, which times the input
pipeline too; ``--min-seconds`` repeats the timed calls until the timed region lasts that
long (short steps on a GPU), and each result records the wall time of the first call
(compilation and one call).

Measured on a 2-core AMD EPYC (Zen 4, AVX-512; quiet machine), study_cnn, images/s at
64 / 128 px: ``steps4_gemm`` 246-267 / 61-62, ``steps4_wino`` 274 / 59, ``split_wino``
182 / 41; on a 2-core Intel Xeon (AVX-512, no AMX), after the one-select max-pooling
gradient (:func:`learn.layers.max_pool2`, 1.17-1.20x): ``steps4_gemm`` 364 / 89,
``steps4_wino`` 289 / 78, ``steps4_xla`` 200 / 41. Tried and dropped: bfloat16 products with
float32 accumulation (the CPU multiplies bf16 at 2x the float32 rate, but the casts and im2col
traffic made the step 0.8x slower). ``--ceiling``: 295 MFLOP per training image at 64 px
(1180 at 128) with direct convolutions, 143 (572) with Winograd; sustained matmul 180 GFLOP/s
(AMD; 230-280 Intel), hence at most 608 / 152 img/s for direct convolutions there: the Keras
figures (970 / 225) are out of reach without fewer operations, and Winograd's ceiling
(1252 / 314) is where the headroom is. The steps run at 30-45 % of the matmul rate: im2col,
pooling and the optimiser are memory-bound. The same network in Keras 3 / TensorFlow on the
same machines (``benchmarks/train_keras.py``, run back to back): 381 / 94 img/s (AMD) and
642-678 / 148-160 (Intel) with its oneDNN convolutions, 274 / 37 and 299 / 50 with
``jit_compile=True``; study_cnn ``steps4_gemm`` is at 0.72x / 0.67x (AMD, before the pooling
gradient) and 0.55x / 0.57x (Intel) of Keras's best. XLA CPU options
(``--xla_cpu_use_onednn``, ``--xla_cpu_use_xnnpack``, the XNN/oneDNN/YNN fusion types, fast
math) moved ``steps4_gemm`` by less than 5 %; so did XLA's convolution in the forward pass
with im2col matrix products for the gradients (a custom VJP: 273 against 264 img/s at 64 px).

With ``--ceiling`` it also reports what bounds any implementation: the floating-point
operations of one training step per image (XLA's cost analysis of the compiled step, for
direct and for Winograd convolutions), the sustained float32 matrix-product rate of this
machine (a large jitted matmul, all cores), and their ratio, the images/s a step would
reach if every operation ran at that rate.

XLA options are process-wide: pass ``--xla-flags "..."`` to rerun the ladder under other
flags (they are put in ``XLA_FLAGS`` before JAX starts).

Examples
--------
::

    python benchmarks/train.py                         # all models, 64 and 128 px
    python benchmarks/train.py --models study_cnn --sizes 64 --variants split_gemm steps4_gemm --json
    python benchmarks/train.py --models study_cnn pyramid --batch-size 64 256 --variants split_auto \
        --min-seconds 1 --jsonl                        # a GPU: one JSON line per result, as it comes
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time

VARIANTS = ("nnx_jit", "split_xla", "split_gemm", "steps4_xla", "steps4_gemm", "steps4_data",
            "split_wino", "steps4_wino")
"""The default ladder."""
EXTRA_VARIANTS = ("split_auto", "steps4_auto")
"""Variants run only when named (``conv_impl="auto"``, what a training run uses)."""


def parse(argv=None):
    # turbsim.console needs no JAX: the flags are parsed before JAX starts (learn.models would start it)
    from turbsim.console import ArgumentParser

    p = ArgumentParser(description="Training images/s of learn's models (after compilation).")
    p.add_argument("--models", nargs="+", default=["study_cnn", "resnet"],
                   choices=("study_cnn", "resnet", "pyramid"), help="models (learn.models.MODELS)")
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128], help="image sides [pixels]")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS + EXTRA_VARIANTS,
                   help="variants of the training step (see the module docstring)")
    p.add_argument("--batch-size", type=int, nargs="+", default=[64],
                   help="images per training step (several: each is timed)")
    p.add_argument("--images", type=int, default=1536, help="images timed per measurement (after warm-up)")
    p.add_argument("--min-seconds", type=float, default=0.0,
                   help="repeat the timed calls until the timed region lasts at least this long [s]")
    p.add_argument("--xla-flags", default=None, help="XLA_FLAGS for this process (set before JAX starts)")
    p.add_argument("--ceiling", action="store_true",
                   help="also report FLOPs per training image, the sustained matmul rate and their ratio")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--jsonl", action="store_true",
                   help="print one JSON line per result as it is measured, then one with the run's information")
    args = p.parse_args(argv)
    if min(args.batch_size) < 1 or min(args.sizes) < 1 or args.images < 1 or args.min_seconds < 0:
        p.error("--batch-size, --sizes and --images must be >= 1, --min-seconds >= 0")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.xla_flags is not None:
        os.environ["XLA_FLAGS"] = args.xla_flags
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from turbsim.console import progress

    from learn import models, sources, train
    from learn.config import TrainConfig, model_and_optimizer
    from learn.transforms import STUDY_AUGMENT, Normaliser

    def build(name, size, impl, batch=64):
        cfg = TrainConfig(data="-", model=name, conv_impl=impl, batch_size=batch)
        return model_and_optimizer(cfg, size, 1000)

    def timed(call_once, n_calls, images_per_call):
        """Images/s of ``n_calls`` calls (repeated until ``--min-seconds``); ``call_once(i)`` returns an array."""
        done, t = 0, time.perf_counter()
        while True:
            for i in range(n_calls):
                out = call_once(done + i)
            out.block_until_ready()
            done += n_calls
            dt = time.perf_counter() - t
            if dt >= args.min_seconds:
                return done * images_per_call / dt

    def bench_nnx_jit(name, size, batch):
        model, opt = build(name, size, "xla", batch)
        loss_fn = train.loss_and_metric("classify", False)

        @nnx.jit
        def step(model, opt, x, y, key):
            def lf(model):
                return loss_fn(model(x, rngs=nnx.Rngs(dropout=key)), y)[0]
            loss, g = nnx.value_and_grad(lf)(model)
            opt.update(model, g)
            return loss

        x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, size, size)), jnp.float32)
        y = jnp.zeros(batch, jnp.int32)
        key = jax.random.key(0)
        t0 = time.perf_counter()
        step(model, opt, x, y, key).block_until_ready()
        first = time.perf_counter() - t0
        return timed(lambda i: step(model, opt, x, y, key), max(1, args.images // batch), batch), first

    def bench_split(name, size, batch, impl, k, with_data=False):
        model, opt = build(name, size, impl, batch)
        model.train()
        graphdef, state = nnx.split((model, opt))
        call = train.make_train_call(graphdef, train.loss_and_metric("classify", False))
        rng = np.random.default_rng(0)
        n_calls = max(1, args.images // (batch * k))
        if with_data:
            # enough simulations for the calls of at least --min-seconds: the epoch is cycled
            n_sims = -(-(n_calls + 1) * batch * k // 48)
            maps = rng.normal(size=(n_sims, 3, 2 * size, 2 * size)).astype(np.float32)
            src = sources.InMemorySource(maps, rng.integers(0, 2, n_sims).astype(np.int32))

            def epochs():
                for e in itertools.count():
                    yield from sources.epoch_batches(src, e, seed=0, batch_size=batch, steps_per_call=k,
                                                     augment=STUDY_AUGMENT, normaliser=Normaliser("per_image"))

            batches = sources.prefetch(epochs())
        else:
            # held on the device: the step is timed, not the host-to-device copy of a constant batch
            xs = jax.device_put(rng.normal(size=(k, batch, size, size)).astype(np.float32))
            ys = jax.device_put(np.zeros((k, batch), np.int32))
            batches = iter(lambda: (xs, ys), None)
        key = jax.random.key(0)
        box = {"state": state}

        def one(i):
            xs, ys = next(batches)
            box["state"], loss, _ = call(box["state"], xs, ys, jnp.int32(i), key)
            return loss

        t0 = time.perf_counter()
        one(0).block_until_ready()
        first = time.perf_counter() - t0
        try:
            return timed(lambda i: one(i + 1), n_calls, k * batch), first
        finally:
            if with_data:
                batches.close()

    runners = {
        "nnx_jit": lambda m, s, b: bench_nnx_jit(m, s, b),
        "split_xla": lambda m, s, b: bench_split(m, s, b, "xla", 1),
        "split_gemm": lambda m, s, b: bench_split(m, s, b, "gemm", 1),
        "steps4_xla": lambda m, s, b: bench_split(m, s, b, "xla", 4),
        "steps4_gemm": lambda m, s, b: bench_split(m, s, b, "gemm", 4),
        "steps4_data": lambda m, s, b: bench_split(m, s, b, "gemm", 4, with_data=True),
        "split_wino": lambda m, s, b: bench_split(m, s, b, "winograd", 1),
        "steps4_wino": lambda m, s, b: bench_split(m, s, b, "winograd", 4),
        "split_auto": lambda m, s, b: bench_split(m, s, b, "auto", 1),
        "steps4_auto": lambda m, s, b: bench_split(m, s, b, "auto", 4),
    }

    def step_flops_per_image(name, size, impl):
        """FLOPs of one compiled training step (XLA cost analysis) per image."""
        batch = args.batch_size[0]
        model, opt = build(name, size, impl, batch)
        model.train()
        graphdef, state = nnx.split((model, opt))
        call = train.make_train_call(graphdef, train.loss_and_metric("classify", False), donate=False)
        xs = jnp.zeros((1, batch, size, size), jnp.float32)
        ys = jnp.zeros((1, batch), jnp.int32)
        cost = call.lower(state, xs, ys, jnp.int32(0), jax.random.key(0)).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"]) / batch

    def matmul_gflops(n=2048, reps=10):
        """Sustained float32 matrix-product rate [GFLOP/s] of a large jitted matmul."""
        a = jnp.asarray(np.random.default_rng(1).normal(size=(n, n)), jnp.float32)
        f = jax.jit(lambda a: a @ a)
        f(a).block_until_ready()
        t = time.perf_counter()
        for _ in range(reps):
            r = f(a)
        r.block_until_ready()
        return 2.0 * n**3 * reps / (time.perf_counter() - t) / 1e9
    results = []
    todo = [(m, s, b, v) for m in args.models for s in args.sizes for b in args.batch_size for v in args.variants]
    quiet = args.json or args.jsonl
    for m, s, b, v in progress(todo, desc="benchmark", unit="run", disable=quiet):
        ips, first = runners[v](m, s, b)
        n_params = models.count_params(build(m, s, "gemm")[0])
        results.append({"model": m, "size": s, "batch_size": b, "variant": v, "images_per_s": round(ips, 1),
                        "first_call_s": round(first, 2), "n_params": n_params})
        if args.jsonl:
            print(json.dumps(results[-1]), flush=True)
    info = {"batch_size": args.batch_size[0], "batch_sizes": args.batch_size,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "results": results}
    if args.ceiling:
        rate = matmul_gflops()
        info["matmul_gflops"] = round(rate, 1)
        info["ceiling"] = [
            {"model": m, "size": s, "conv": impl, "mflop_per_image": round(f / 1e6, 1),
             "ceiling_images_per_s": round(rate * 1e9 / f, 1)}
            for m in args.models for s in args.sizes for impl in ("gemm", "winograd")
            for f in [step_flops_per_image(m, s, impl)]]
    if args.jsonl:
        print(json.dumps({k: v for k, v in info.items() if k != "results"}))
    elif args.json:
        print(json.dumps(info))
    else:
        print(f"batch {', '.join(map(str, args.batch_size))}, devices {info['devices']}, "
              f"XLA_FLAGS={info['xla_flags']!r}")
        print(f"{'model':<10} {'size':>5} {'batch':>5} {'variant':<11} {'images/s':>9} {'1st call s':>10}")
        for r in results:
            print(f"{r['model']:<10} {r['size']:>5} {r['batch_size']:>5} {r['variant']:<11} "
                  f"{r['images_per_s']:>9.1f} {r['first_call_s']:>10.2f}")
        if args.ceiling:
            print(f"\nsustained float32 matmul: {info['matmul_gflops']:.1f} GFLOP/s")
            print(f"{'model':<10} {'size':>5} {'conv':<9} {'MFLOP/img':>10} {'ceiling img/s':>14}")
            for c in info["ceiling"]:
                print(f"{c['model']:<10} {c['size']:>5} {c['conv']:<9} {c['mflop_per_image']:>10.1f} "
                      f"{c['ceiling_images_per_s']:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
