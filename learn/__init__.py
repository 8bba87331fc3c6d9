"""Learning the turbulence spectral index from column-density maps (JAX / Flax NNX).

Pieces (pure, no run directories):
:mod:`learn.config` (``TrainConfig``, optimiser, the command-line form of its fields),
:mod:`learn.transforms` (normalisers, target scaling, cuts, resampling, evaluation images),
:mod:`learn.sources` (in-memory, HDF5 and live sources of training maps, epochs of batches),
:mod:`learn.data` (loading ensembles and RAMSES map files, training data),
:mod:`learn.layers`, :mod:`learn.models`, :mod:`learn.metrics`.

Stages: :mod:`learn.train` (step, epoch, loop), :mod:`learn.rundir` (files, checkpoints,
loading a run), :mod:`learn.predict`, :mod:`learn.readout`, :mod:`learn.baselines`,
:mod:`learn.evaluate`, :mod:`learn.figures`, :mod:`learn.report`, and
:mod:`learn.pipeline` (the whole fit: train, evaluate, baselines, report).

Commands: ``python -m learn.fit`` and ``python -m learn.evaluate``.
"""
