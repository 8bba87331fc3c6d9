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
:mod:`learn.pipeline` (the whole fit: train, evaluate, baselines, report). What a trained
network sees: :mod:`learn.explain` (saliency, saliency spectra, band occlusion),
:mod:`learn.embed` (t-SNE), :mod:`learn.transfer` (from the regression of n to the
classification), each written as a section of the run directory (:mod:`learn.sections`).

Commands: ``python -m learn.fit``, ``python -m learn.evaluate``, ``python -m learn.explain``
and ``python -m learn.transfer``.
"""
