"""Training images/s of the study's CNN in PyTorch: the anchor for learn's ``study_cnn``.

The network of :class:`learn.models.StudyCNN` layer for layer: four 3x3 convolutions with
bias and 'same' padding (32, 64, 128, 128 filters), each followed by ReLU and 2x2 max
pooling, then dense layers of 256 and 64 units with ReLU and dropout 0.5, and a 2-logit
output layer; the parameter count is checked against learn's model (781,378 at 64 px), or
against the same formula where JAX is not importable. The optimiser is RMSprop as the
study's and :class:`learn.config.TrainConfig`'s default (learning rate 1e-3, decay 0.9,
eps 1e-7; PyTorch adds eps outside the square root, as Keras does), the loss softmax
cross-entropy on integer labels, and each step also counts the correct predictions, as
learn's step does.

Timed the way ``benchmarks/train.py`` times learn's models: random images held on the
device (put there once), one warm-up call (its wall time reported as ``first_call_s``),
then ``--images`` images in steps of ``--batch-size``, repeated until the timed region
lasts ``--min-seconds``; the device is synchronised before and after the timed region.
``eager`` is plain PyTorch; ``--compile`` adds ``torch.compile`` of the model (tried, and
reported as failed where the compiler cannot run, e.g. without a C compiler).

PyTorch is not a dependency of the project: run this with an interpreter that has it.
Exit status 3 when PyTorch is not importable.

Usage::

    python benchmarks/train_torch.py                               # 64 and 128 px, batch 64
    python benchmarks/train_torch.py --batch-size 64 256 --min-seconds 1 --jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

FILTERS = (32, 64, 128, 128)
"""Convolution filters, as :attr:`learn.models.StudyCNN.FILTERS`."""
DENSE = (256, 64)
"""Hidden dense units, as :attr:`learn.models.StudyCNN.DENSE`."""
DROPOUT = 0.5
RMSPROP = dict(lr=1e-3, alpha=0.9, eps=1e-7)
"""Keras' RMSprop defaults, as :func:`learn.config.make_optimizer` sets them."""


def formula_params(input_size: int, n_out: int = 2) -> int:
    """Parameters of the study's CNN on ``input_size`` px images (convolutions and dense layers)."""
    chans = (1,) + FILTERS
    conv = sum(9 * a * b + b for a, b in zip(chans[:-1], chans[1:]))
    dims = ((input_size // 16) ** 2 * FILTERS[-1],) + DENSE + (n_out,)
    return conv + sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def learn_params(input_size: int) -> int | None:
    """``count_params`` of learn's ``study_cnn`` classifier, or None where learn cannot be imported.

    JAX is kept on the CPU here, so that it takes none of the GPU's memory from PyTorch.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        from learn.models import build_model, count_params
    except Exception:  # noqa: BLE001 (no JAX, or another version of it: the formula checks instead)
        return None
    return int(count_params(build_model("study_cnn", task="classify", input_size=input_size, seed=0)))


def study_cnn(torch, input_size: int, n_out: int = 2, padding: str = "zeros"):
    """The study's CNN as a ``torch.nn.Sequential`` (NCHW, one input channel)."""
    nn = torch.nn
    if input_size % 16:
        raise ValueError(f"the study's CNN needs an input size divisible by 16, got {input_size}")
    layers, chans = [], (1,) + FILTERS
    for a, b in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1, padding_mode=padding, bias=True), nn.ReLU(), nn.MaxPool2d(2)]
    layers.append(nn.Flatten())
    dims = ((input_size // 16) ** 2 * FILTERS[-1],) + DENSE
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(DROPOUT)]
    layers.append(nn.Linear(dims[-1], n_out))
    return nn.Sequential(*layers)


def count(model) -> int:
    """Trainable parameters of a torch module."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def bench(torch, device, size: int, batch: int, *, images: int, min_seconds: float, compile_model: bool,
          padding: str = "zeros") -> dict:
    """Images/s of training steps at one image size and batch size (see the module docstring)."""
    torch.manual_seed(0)
    model = study_cnn(torch, size, padding=padding).to(device)
    model.train()
    n_params = count(model)
    opt = torch.optim.RMSprop(model.parameters(), **RMSPROP)
    loss_fn = torch.nn.CrossEntropyLoss()
    net = torch.compile(model) if compile_model else model
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, size, size, generator=gen).to(device)
    y = torch.zeros(batch, dtype=torch.long).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(x)
        loss = loss_fn(out, y)
        loss.backward()
        opt.step()
        correct = (out.argmax(1) == y).sum()
        return loss, correct

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    t0 = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t0
    n_calls, done = max(1, images // batch), 0
    sync()
    t = time.perf_counter()
    while True:
        for _ in range(n_calls):
            loss, _ = step()
        sync()
        done += n_calls
        dt = time.perf_counter() - t
        if dt >= min_seconds:
            break
    if not torch.isfinite(loss.detach()).item():
        raise RuntimeError(f"loss is not finite at {size} px, batch {batch}")
    return {"framework": "torch", "model": "study_cnn", "size": size, "batch_size": batch,
            "variant": "compile" if compile_model else "eager", "images_per_s": round(done * batch / dt, 1),
            "first_call_s": round(first, 2), "steps": done, "n_params": n_params}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 128], help="image sides [pixels], multiples of 16")
    ap.add_argument("--batch-size", nargs="+", type=int, default=[64], help="images per training step")
    ap.add_argument("--images", type=int, default=1536, help="images timed per measurement (after warm-up)")
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="repeat the timed steps until the timed region lasts at least this long [s]")
    ap.add_argument("--device", default="auto", help="torch device (auto: cuda when available, else cpu)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the model")
    ap.add_argument("--padding", choices=("zeros", "circular"), default="zeros", help="convolution padding")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of PyTorch (default: its own choice)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--jsonl", action="store_true",
                    help="print one JSON line per result as it is measured, then one with the run's information")
    args = ap.parse_args(argv)
    if min(args.sizes) < 16 or any(s % 16 for s in args.sizes):
        ap.error("--sizes must be multiples of 16")
    if min(args.batch_size) < 1 or args.images < 1 or args.min_seconds < 0:
        ap.error("--batch-size and --images must be >= 1, --min-seconds >= 0")
    try:
        import torch
    except ImportError:
        print("torch not installed", file=sys.stderr)
        return 3

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    torch.backends.cudnn.benchmark = True  # autotuned convolutions, as XLA autotunes its own
    if args.threads:
        torch.set_num_threads(args.threads)
    checks = []
    for s in args.sizes:
        mine, learn_count = formula_params(s), learn_params(s)
        got = count(study_cnn(torch, s, padding=args.padding))
        ref, against = (learn_count, "learn.models") if learn_count is not None else (mine, "formula")
        if got != ref:
            raise AssertionError(f"torch study CNN has {got} parameters at {s} px, {against} {ref}")
        checks.append({"size": s, "n_params": got, "checked_against": against})
    info = {"framework": "torch", "torch": torch.__version__, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_tf32": torch.backends.cudnn.allow_tf32, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
            "param_check": checks, "batch_sizes": args.batch_size}
    results = []
    variants = [False, True] if args.compile else [False]
    for comp in variants:
        for s in args.sizes:
            for b in args.batch_size:
                try:
                    r = bench(torch, device, s, b, images=args.images, min_seconds=args.min_seconds,
                              compile_model=comp, padding=args.padding)
                except Exception as exc:  # noqa: BLE001 (torch.compile may fail offline: say so, go on)
                    if not comp:
                        raise
                    r = {"framework": "torch", "model": "study_cnn", "size": s, "batch_size": b,
                         "variant": "compile", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                results.append(r)
                if args.jsonl:
                    print(json.dumps(r), flush=True)
    if args.jsonl:
        print(json.dumps(info))
    elif args.json:
        print(json.dumps({**info, "results": results}))
    else:
        print(f"torch {info['torch']} on {info['device']} ({info['device_name']}); parameters "
              + ", ".join(f"{c['n_params']} at {c['size']} px ({c['checked_against']})" for c in checks))
        print(f"{'variant':<8} {'size':>5} {'batch':>5} {'images/s':>9} {'1st call s':>10}")
        for r in results:
            if "error" in r:
                print(f"{r['variant']:<8} {r['size']:>5} {r['batch_size']:>5}  failed: {r['error']}")
            else:
                print(f"{r['variant']:<8} {r['size']:>5} {r['batch_size']:>5} {r['images_per_s']:>9.1f} "
                      f"{r['first_call_s']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
