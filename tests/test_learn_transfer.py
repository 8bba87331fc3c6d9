"""Transfer learning from the regression of n to the classification (learn.transfer)."""
import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("flax")

from flax import nnx  # noqa: E402

from learn import sections, transfer  # noqa: E402
from learn.models import build_model  # noqa: E402
from learn.rundir import load_run  # noqa: E402


def _params(model, which=nnx.Param) -> dict:
    return {p: np.asarray(v) for p, v in nnx.to_flat_state(nnx.state(model, which))}


@pytest.mark.parametrize("name, kw", [("pyramid", {"widths": (4, 8), "hidden": 8}),
                                      pytest.param("study_cnn", {}, marks=pytest.mark.slow),
                                      pytest.param("resnet", {"widths": (4, 8), "blocks": (1, 1), "stem": 4},
                                                   marks=pytest.mark.slow)])
def test_transfer_copies_everything_but_the_output_layer(name, kw):
    source = build_model(name, task="regress", input_size=16, seed=1, **kw)
    model = transfer.transfer_model(source, name, seed=2, input_size=16, config_kwargs=kw)
    src, new = _params(source), _params(model)
    head = [p for p, _ in nnx.to_flat_state(nnx.state(model, nnx.All(nnx.Param, transfer.head_filter(model))))]
    assert head and all(p in new for p in head)
    for path, value in new.items():
        if path in head:
            assert value.shape != src[path].shape  # 2 logits where the regression had 1 output
        else:
            np.testing.assert_array_equal(value, src[path], err_msg=str(path))
    if name == "resnet":  # batch statistics travel too
        for path, value in _params(model, nnx.BatchStat).items():
            np.testing.assert_array_equal(value, _params(source, nnx.BatchStat)[path])
    if name == "pyramid":
        with pytest.raises(ValueError, match="architectures differ"):
            transfer.transfer_model(source, name, seed=2, input_size=16, config_kwargs={**kw, "widths": (5, 8)})


def test_regression_weights_are_loaded_and_the_probe_trains_only_the_head(tiny_regress_run):
    run = load_run(tiny_regress_run, readout=False)
    kw = transfer.run_model_kwargs(run.config)
    model = transfer.transfer_model(run.model, run.config.model, seed=0, input_size=run.image_size, config_kwargs=kw)
    before, reg = _params(model), _params(run.model)
    head = nnx.All(nnx.Param, transfer.head_filter(model))
    head_paths = {p for p, _ in nnx.to_flat_state(nnx.state(model, head))}
    for path, value in before.items():
        if path not in head_paths:
            np.testing.assert_array_equal(value, reg[path])  # the regression run's trained weights
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, run.image_size, run.image_size)).astype(np.float32)
    y = (x[:, :4, :4].mean(axis=(1, 2)) > 0).astype(int)
    losses = transfer.fit_images(model, x, y, trainable=head, frozen_mode=True, steps=12, batch_size=16,
                                 learning_rate=1e-2)
    assert len(losses) == 12 and np.isfinite(losses).all()
    after = _params(model)
    for path in before:
        if path in head_paths:
            assert not np.array_equal(after[path], before[path]), path  # the head learned
        else:
            np.testing.assert_array_equal(after[path], before[path], err_msg=str(path))  # the body did not move
    # fine-tuning moves the body too
    transfer.fit_images(model, x, y, steps=4, batch_size=16)
    assert any(not np.array_equal(_params(model)[p], before[p]) for p in before if p not in head_paths)


def test_learning_curve_section(tiny_regress_run, tiny_binary, tmp_path):
    opts = transfer.TransferOptions(sizes=(1, 100), epochs=0.1, min_steps=6, batch_size=16)
    path = transfer.transfer_run(tiny_regress_run, tiny_binary, out_dir=tmp_path / "out", options=opts)
    sec = sections.read_sections(tmp_path / "out")["transfer"]
    data = sec.data
    assert data["sizes"] == [1, 6]  # 100 capped at the 6 training simulations of each class
    assert "capped" in sec.text and "anecdotes" in sec.text
    assert {(p["arm"], p["size"]) for p in data["points"]} == {(a, n) for a in transfer.ARMS for n in (1, 6)}
    for p in data["points"]:
        assert 0.0 <= p["accuracy_per_image"] <= 1.0 and p["steps"] >= 6
        assert p["n_images"] == 2 * p["size"] * 48  # the study's 48 images of each training simulation
    assert sec.figure_path(sec.figures[0]).is_file()
    assert json.loads(path.read_text())["title"] == sec.title
    run = load_run(tiny_regress_run, readout=False)
    classifier = dataclasses.replace(run, config=run.config.replace(task="classify"))
    with pytest.raises(ValueError, match="starts from a regression run"):
        transfer.learning_curve(classifier, tiny_binary, opts)


def test_transfer_options_and_nested_subsets_are_checked():
    with pytest.raises(ValueError, match="arms"):
        transfer.TransferOptions(arms=("probe", "distil"))
    with pytest.raises(ValueError, match="sizes"):
        transfer.TransferOptions(sizes=(0, 10))
    assert transfer.TransferOptions(sizes=(30, 10, 10)).sizes == (10, 30)
    sub = transfer.nested_subsets(np.array([0, 1, 1, 0, 0, 1, 1, 0]), (1, 2, 4), seed=5)
    assert [len(sub[n]) for n in (1, 2, 4)] == [2, 4, 8]
    assert set(sub[1]) <= set(sub[2]) <= set(sub[4])


def test_random_dihedral_keeps_each_image_in_its_orbit():
    x = np.random.default_rng(0).normal(size=(16, 4, 4))
    y = transfer.random_dihedral(x, np.random.default_rng(1))
    for a, b in zip(x, y):
        orbit = [np.rot90(f, k) for f in (a, a[:, ::-1]) for k in range(4)]
        assert any(np.array_equal(b, o) for o in orbit)
    assert not np.array_equal(x, y)
