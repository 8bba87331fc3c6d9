"""learn.sources: the Source protocol, epochs of batches, prefetching, the live source's replay."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from turbsim import observe
from learn import sources
from learn.transforms import STUDY_AUGMENT, Normaliser


def _maps(k=2, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(k, n, n)).astype(np.float32)


def test_epoch_batches_cover_every_image_once_in_a_seeded_order():
    logm = _maps(4 * 3, 8).reshape(4, 3, 8, 8)
    src = sources.InMemorySource(logm, np.arange(4))
    kw = dict(seed=1, batch_size=8, steps_per_call=2, augment=STUDY_AUGMENT, normaliser=Normaliser())
    a = list(sources.epoch_batches(src, 0, **kw))
    assert len(a) == sources.calls_per_epoch(4, STUDY_AUGMENT, 8, 2) == 12
    xs = np.concatenate([x.reshape(-1, 4, 4) for x, _ in a])
    ref = observe.augment(logm).reshape(-1, 4, 4)
    assert sorted(i.tobytes() for i in xs) == sorted(i.tobytes() for i in ref)
    b = list(sources.epoch_batches(src, 0, **kw))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    c = list(sources.epoch_batches(src, 1, **kw))
    assert not np.array_equal(a[0][0], c[0][0])


def test_prefetch_passes_items_and_errors():
    assert list(sources.prefetch(iter(range(5)))) == list(range(5))

    def bad():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(sources.prefetch(bad()))


def test_the_three_sources_are_sources(tmp_path):
    mem = sources.InMemorySource(np.zeros((2, 3, 4, 4)), np.arange(2))
    disk = sources.HDF5Source(tmp_path / "x.h5", np.arange(2), np.arange(2), map_size=4)
    live = sources.LiveSource(SimpleNamespace(cells=4, map_cells=4), "classify", sims_per_epoch=2, seed=0)
    for src in (mem, disk, live):
        assert isinstance(src, sources.Source) and src.n_sims == 2 and src.map_size == 4
    assert not isinstance(SimpleNamespace(n_sims=2, map_size=4), sources.Source)  # no chunks()


def test_the_live_stream_comes_from_turbsim_stream_and_no_command_module(monkeypatch):
    import ast
    from pathlib import Path

    from turbsim import stream

    calls = []
    monkeypatch.setattr(stream, "stream", lambda *a, **kw: calls.append(kw) or iter(()))
    live = sources.LiveSource(SimpleNamespace(cells=4, map_cells=4), "regress", sims_per_epoch=2, seed=7,
                              n_range=(3.0, 4.0))
    live._stream(4)
    assert calls == [{"seed": 7, "workers": None, "start": 4, "n_range": (3.0, 4.0)}]
    # learn imports no command-line module of turbsim (they may import learn's libraries, never the reverse)
    for path in Path(sources.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names] \
                    if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not {"turbsim.generate", "turbsim.compare"} & set(names), (path.name, names)


def test_live_source_replays_the_normaliser_sample_in_epoch_zero():
    # a stream of fake simulations: the maps carry the simulation index
    opened = []

    def fake_stream(start):
        opened.append(start)
        for i in itertools.count(start):
            yield {"klass": i % 2, "n": 3.5, "projections": np.full((3, 4, 4), 10.0 ** (i + 1))}

    src = sources.LiveSource(SimpleNamespace(cells=4, map_cells=4), "classify", sims_per_epoch=6, seed=0, chunk_sims=2)
    src._stream = fake_stream
    sample = src.sample(3)  # two chunks of 2 simulations are simulated
    assert sample.shape == (3, 3, 4, 4) and opened == [0]
    index = lambda chunks: [int(round(m[0, 0, 0])) - 1 for c in chunks for m in c.maps]  # noqa: E731
    assert index(src.chunks(0, np.random.default_rng(0))) == list(range(6))
    assert opened == [0, 4]  # epoch 0 streams only what the sample did not simulate
    assert index(src.chunks(1, np.random.default_rng(0))) == list(range(6, 12))
    assert index(src.chunks(0, np.random.default_rng(0))) == list(range(6))  # replayed once only
    assert opened == [0, 4, 6, 0]


def test_live_source_keeps_one_stream_across_epochs(monkeypatch):
    # one worker pool serves every epoch in turn (its prefetched simulations are the next
    # epoch's first ones); a rewind, an error or close() ends it
    from turbsim import stream

    opened, closed, failed = [], [], []

    def fake_stream(template, *, seed, workers, start, **kw):
        opened.append(start)
        try:
            for i in itertools.count(start):
                if i == 13 and not failed:
                    failed.append(i)
                    raise RuntimeError("simulation 13 failed")
                yield {"klass": i % 2, "n": 3.5, "projections": np.full((3, 4, 4), 10.0 ** (i + 1))}
        finally:
            closed.append(start)

    monkeypatch.setattr(stream, "stream", fake_stream)
    src = sources.LiveSource(SimpleNamespace(cells=4, map_cells=4), "classify", sims_per_epoch=4, seed=0, chunk_sims=3)
    index = lambda chunks: [int(round(m[0, 0, 0])) - 1 for c in chunks for m in c.maps]  # noqa: E731
    src.sample(2)
    assert index(src.chunks(0, None)) == [0, 1, 2, 3]
    assert index(src.chunks(1, None)) == [4, 5, 6, 7]
    assert opened == [0] and closed == []  # the sample, epoch 0 and epoch 1 from one stream
    assert index(src.chunks(0, None)) == [0, 1, 2, 3]  # a rewind opens a new stream at 0
    assert opened == [0, 0] and closed == [0]
    assert index(src.chunks(2, None)) == [8, 9, 10, 11]
    with pytest.raises(RuntimeError, match="simulation 13"):
        list(src.chunks(3, None))  # 12 then the failure: the stream is closed, the next epoch opens one
    assert closed[-1] == 8
    assert index(src.chunks(3, None)) == [12, 13, 14, 15] and opened[-1] == 12
    src.close()
    assert len(closed) == len(opened)
