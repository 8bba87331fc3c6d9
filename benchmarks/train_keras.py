"""The study's Keras network trained with Keras 3 on TensorFlow: the reference speed.

The figure learn's study_cnn is compared with (``benchmarks/train.py``). Same
architecture (4 x [3x3 conv 'same', ReLU, 2x2 max pool] with 32, 64, 128, 128 filters,
dense 256 and 64 with dropout 0.5, 2 logits: 781,378 parameters at 64x64), RMSprop,
batch 64, float32 NHWC, images/s of ``model.fit`` after a warm-up epoch, with and
without XLA compilation (``jit_compile``).

TensorFlow is not a dependency of turbsim: run this with an interpreter that has it
(e.g. a separate virtual environment with ``pip install tensorflow-cpu``)::

    python benchmarks/train_keras.py [--sizes 64 128] [--json]

and ``python benchmarks/train.py`` with turbsim's own, on the same machine, right after.
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def parse(argv=None):
    p = argparse.ArgumentParser(description="Training images/s of the study's CNN in Keras 3 / TensorFlow.")
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128], help="image sides [pixels]")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--images", type=int, default=1536, help="images per timed epoch (two are timed)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p.parse_args(argv)


def study_cnn(size: int):
    """The study's network for ``size`` x ``size`` images."""
    import keras
    from keras import layers

    convs = []
    for f in (32, 64, 128, 128):
        convs += [layers.Conv2D(f, 3, padding="same", activation="relu"), layers.MaxPooling2D()]
    return keras.Sequential([keras.Input((size, size, 1)), *convs, layers.Flatten(),
                             layers.Dense(256, activation="relu"), layers.Dropout(0.5),
                             layers.Dense(64, activation="relu"), layers.Dropout(0.5), layers.Dense(2)])


def main(argv=None) -> int:
    args = parse(argv)
    try:
        import keras
        import numpy as np
        import tensorflow as tf
    except ImportError as e:
        print(f"train_keras.py needs keras and tensorflow ({e}); run it with an interpreter that has them",
              file=sys.stderr)
        return 2
    rows = []
    for size in args.sizes:
        for jit in (True, False):
            model = study_cnn(size)
            model.compile(optimizer=keras.optimizers.RMSprop(1e-3), jit_compile=jit,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            x = np.random.default_rng(0).normal(size=(args.images, size, size, 1)).astype(np.float32)
            y = np.zeros(args.images, np.int32)
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # compile, warm up
            t = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=2, verbose=0)
            rate = 2 * args.images / (time.perf_counter() - t)
            rows.append({"size": size, "jit_compile": jit, "params": model.count_params(), "images_per_s": rate})
    info = {"tensorflow": tf.__version__, "keras": keras.__version__, "batch_size": args.batch_size, "rows": rows}
    lines = [json.dumps(info)] if args.json else (
        [f"Keras {info['keras']} on TensorFlow {info['tensorflow']}, batch {args.batch_size}, study CNN"]
        + [f"  {r['size']} px, jit_compile={r['jit_compile']}: {r['images_per_s']:.1f} images/s "
           f"({r['params']} parameters)" for r in rows])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
