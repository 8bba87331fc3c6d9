"""Tests of learn.artefacts, learn.debias and learn.autoencoder: nuisance discriminators, gradient
reversal, the planted-artefact trap and the autoencoder realism AUC.

The fast forms run on 16^3 / 32^3 ensembles and 16 px synthetic maps; the 64^3 forms carry
``@pytest.mark.slow``.
"""
import json

import numpy as np
import pytest

pytest.importorskip("flax")

from conftest import make_ensemble  # noqa: E402

from learn import artefacts  # noqa: E402
from learn.artefacts import (Domain, NetOptions, ScienceOptions, discriminate, interval, load_domain,  # noqa: E402
                             make_pair, pair_split, planted, realism, science_across)

TINY_NET = NetOptions(widths=(4, 8), hidden=8, steps=120, batch_size=32, learning_rate=3e-3, seed=0)


# --------------------------------------------------------------------------------------
# synthetic maps: a power-law field whose slope is the class, and a planted calibration offset
# --------------------------------------------------------------------------------------
def _field(rng, slope, size):
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")) * size
    k[0, 0] = 1.0
    amp = k ** (-slope / 2)
    amp[0, 0] = 0.0
    f = np.fft.ifft2(np.fft.fft2(rng.standard_normal((3, size, size))) * amp).real
    return f / f.std(axis=(-2, -1), keepdims=True)


def synthetic_pair(sims=96, size=16, offset=0.3, spread=1.0, seed=0):
    """Two domains of the same fields: ``b`` carries a planted offset of ``offset`` dex in column density.

    Class 0 has slope 2.5, class 1 slope 3.5, each simulation's slope scattered by ``spread``
    (the class is learnable but not perfectly); the offset is a strong, easy feature."""
    rng = np.random.default_rng(seed)
    klass = np.arange(sims) % 2
    slope = np.where(klass == 1, 3.5, 2.5) + spread * rng.standard_normal(sims)
    maps = (10 ** (0.2 * np.stack([_field(rng, s, size) for s in slope]))).astype(np.float32)
    n = np.where(klass == 1, 4.0, 11 / 3)
    key, train = np.arange(sims), pair_split(sims)
    return (Domain("clean", maps, klass, n, key, train),
            Domain("offset", maps * np.float32(10 ** offset), klass, n, key, train))


@pytest.fixture(scope="module")
def seed_twins(tmp_path_factory):
    """Two 16^3 ensembles of 48 simulations (24 to test) that differ only by their ensemble seed."""
    folder = tmp_path_factory.mktemp("art")
    return tuple(load_domain(make_ensemble(folder / f"seed{s}.h5", sims=48, seed=s, splits=(0.5, 0.5, 0.0)))
                 for s in (3, 8))


# --------------------------------------------------------------------------------------
# gradient reversal
# --------------------------------------------------------------------------------------
def test_reverse_gradient_flips_the_nuisance_gradient():
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from learn.debias import Debiased, reverse_gradient
    from learn.models import build_model

    model = Debiased(build_model("pyramid", task="classify", input_size=16, widths=(4, 8), hidden=8), input_size=16)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 16, 16)), jnp.float32)
    y, z = jnp.arange(8) % 2, (jnp.arange(8) // 2) % 2

    def loss(m, weight, reverse):
        f = m.backbone.features(x)
        f = reverse_gradient(f, weight) if reverse else f
        return optax.softmax_cross_entropy_with_integer_labels(m.adversary(f, y), z).mean()

    plain = nnx.jit(lambda m: nnx.grad(lambda mm: loss(mm, 0.0, False))(m))(model)
    rev = nnx.jit(lambda m: nnx.grad(lambda mm: loss(mm, 2.5, True))(m))(model)
    g_plain = plain["backbone"]["convs"][0]["kernel"][...]
    g_rev = rev["backbone"]["convs"][0]["kernel"][...]
    assert np.abs(g_plain).max() > 1e-6
    np.testing.assert_allclose(g_rev, -2.5 * g_plain, rtol=1e-4, atol=1e-6)  # the features' gradient: reversed
    np.testing.assert_allclose(rev["adv_out"]["kernel"][...], plain["adv_out"]["kernel"][...], rtol=1e-6)  # head: not
    # forward: the identity
    np.testing.assert_array_equal(np.asarray(reverse_gradient(x, 3.0)), np.asarray(x))


def test_confusion_objective_leaves_the_adversary_alone():
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from learn.debias import Debiased
    from learn.models import build_model

    model = Debiased(build_model("pyramid", task="classify", input_size=16, widths=(4, 8), hidden=8), input_size=16)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 16, 16)), jnp.float32)
    y = jnp.arange(8) % 2

    def confusion(m):
        out = m.adversary(m.backbone.features(x), y, frozen=True)
        return optax.softmax_cross_entropy(out, jnp.full_like(out, 0.5)).mean()

    g = nnx.jit(lambda m: nnx.grad(confusion)(m))(model)
    assert np.abs(g["adv_out"]["kernel"][...]).max() == 0.0  # the frozen adversary learns nothing from it
    assert np.abs(g["backbone"]["convs"][0]["kernel"][...]).max() > 0.0  # the features are pushed


def test_weight_schedule_and_options():
    from learn.debias import DebiasOptions, weight_at

    o = DebiasOptions(weight=2.0, steps=100)
    assert weight_at(o, 0) == 0.0 and abs(weight_at(o, 100) - 2.0) < 1e-3
    assert weight_at(DebiasOptions(weight=2.0, ramp=False), 0) == 2.0
    with pytest.raises(ValueError, match="weight"):
        DebiasOptions(weight=-1.0)
    with pytest.raises(ValueError, match="objective"):
        DebiasOptions(objective="mmd")


# --------------------------------------------------------------------------------------
# discriminators
# --------------------------------------------------------------------------------------
def test_discriminator_near_chance_on_seed_twins(seed_twins):
    a, b = seed_twins
    pair = make_pair(a, b, size=16)
    for method in ("spectrum", "network"):
        iv = interval(discriminate(pair, method, TINY_NET), n_boot=300)
        assert iv["lo"] <= 0.5 <= iv["hi"], (method, iv)
        assert abs(iv["point"] - 0.5) < 0.25, (method, iv)


def _scheme_pair(tmp_path, cells, sims):
    paths = artefacts.make_ensembles(tmp_path, ("reference", "first"), sims=sims, seed=5, cells=cells, workers=0)
    return load_domain(paths["reference"]), load_domain(paths["first"])


def test_discriminator_tells_first_order_from_muscl_32(tmp_path):
    a, b = _scheme_pair(tmp_path, 32, 48)
    assert np.array_equal(a.key, b.key) and np.array_equal(a.train, b.train)  # same simulations, same splits
    iv = interval(discriminate(make_pair(a, b, size=32), "spectrum"), n_boot=200)
    assert iv["point"] >= 0.9, iv


@pytest.mark.slow
def test_discriminator_tells_first_order_from_muscl_64(tmp_path):
    a, b = _scheme_pair(tmp_path, 64, 32)
    pair = make_pair(a, b, size=64)
    # measured with 96 simulations: spectrum 100 %, network 90.3 % [84.7, 95.5] after 150 steps
    for method, least in (("spectrum", 0.95), ("network", 0.85)):
        iv = interval(discriminate(pair, method, NetOptions(steps=150)), n_boot=200)
        assert iv["point"] >= least, (method, iv)


# --------------------------------------------------------------------------------------
# planted artefacts
# --------------------------------------------------------------------------------------
def test_planted_modes_follow_the_class():
    a, b = synthetic_pair(sims=400, size=8)
    _, nz_p = planted(a, b, "planted", 0.9)
    _, nz_r = planted(a, b, "reversed", 0.9)
    dom_a, nz_a = planted(a, b, "absent", 0.9)
    assert 0.85 < np.mean(nz_p == a.klass) < 0.95
    assert 0.85 < np.mean(nz_r != a.klass) < 0.95
    assert abs(np.mean(nz_a == a.klass) - 0.5) < 0.1
    i = int(np.flatnonzero(nz_a == 1)[0])
    np.testing.assert_array_equal(dom_a.maps[i], b.maps[i])
    with pytest.raises(ValueError, match="correlation"):
        planted(a, b, "planted", 0.3)
    # another resolution: both sides at the coarser grid (block means)
    fine = Domain("fine", np.repeat(np.repeat(b.maps, 2, axis=-1), 2, axis=-2), b.klass, b.n, b.key, b.train)
    dom, nz = planted(a, fine, "planted", 0.9)
    assert dom.maps.shape[-1] == 8
    i = int(np.flatnonzero(nz == 1)[0])
    np.testing.assert_allclose(dom.maps[i], b.maps[i], rtol=1e-6)


def test_planted_trap_and_debiasing_with_reweighting():
    """A strong planted offset that follows the class in 90 % of the training simulations: the plain
    model reads it, and its accuracy falls on the reversed ensemble; the debiased one (gradient
    reversal and the science loss weighed by (class, nuisance) cell) keeps much more of it."""
    a, b = synthetic_pair()
    got = science_across(a, b, ScienceOptions(0.9, 1.0, TINY_NET, reweight=True), size=16)
    plain = {m: interval(got["plain"][m], n_boot=200)["point"] for m in ("planted", "absent", "reversed", "probe")}
    deb = {m: interval(got["debiased"][m], n_boot=200)["point"] for m in ("planted", "absent", "reversed")}
    assert plain["planted"] > 0.75, plain
    assert plain["reversed"] < plain["planted"] - 0.3, plain
    assert plain["probe"] > 0.9, plain  # the features carry the offset
    assert deb["reversed"] > plain["reversed"] + 0.2, (deb, plain)
    # the reference trained where the offset is absent has no correlation to learn: on the
    # reversed ensemble it is not misled as the plain model is (measured 72 % against 10 %)
    unb = interval(got["unbiased"]["reversed"], n_boot=200)["point"]
    assert unb > plain["reversed"] + 0.3, (unb, plain)


@pytest.mark.slow
@pytest.mark.xfail(reason="not reached by gradient reversal alone: on a strong planted offset the adversary "
                          "saturates at 100 % and the reversed gradient does not remove the offset from the "
                          "pyramid's log energies (measured: plain / debiased reversed 26 % / 24 %, weights 1-30)",
                   strict=False)
def test_gradient_reversal_alone_recovers_accuracy_on_the_reversed_ensemble():
    a, b = synthetic_pair()
    got = science_across(a, b, ScienceOptions(0.9, 1.0, NetOptions(widths=(4, 8), hidden=8, steps=400)), size=16)
    deb = {m: interval(got["debiased"][m], n_boot=200)["point"] for m in ("planted", "reversed")}
    plain = interval(got["plain"]["reversed"], n_boot=200)["point"]
    assert deb["reversed"] > plain + 0.2 and deb["reversed"] >= deb["planted"] - 0.05, (deb, plain)


# --------------------------------------------------------------------------------------
# autoencoder
# --------------------------------------------------------------------------------------
def test_autoencoder_auc_near_half_on_two_halves_of_one_ensemble(tiny_binary):
    from learn.autoencoder import AutoencoderOptions

    dom = load_domain(tiny_binary)
    half = (np.arange(len(dom.key)) // 4) % 2 == 0  # both classes and both splits in each half
    a, b = dom.take(np.flatnonzero(half)), dom.take(np.flatnonzero(~half))
    iv = interval(realism(make_pair(a, b, size=16), 0, AutoencoderOptions(widths=(4, 4), steps=150)), "auc",
                  n_boot=300)
    assert iv["lo"] <= 0.5 <= iv["hi"] and abs(iv["point"] - 0.5) < 0.25, iv


# --------------------------------------------------------------------------------------
# the section and the command line
# --------------------------------------------------------------------------------------
def _fake_row(name):
    iv = {"point": 0.5, "lo": 0.4, "hi": 0.6, "n_sims": 24}
    arm = {m: iv for m in ("planted", "absent", "reversed", "probe", "head")}
    return {"nuisance": name, "what": "x", "a": "a", "b": "b", "n_sims": {"a": 12, "b": 12, "test": 12},
            "discriminator_network": iv, "discriminator_spectrum": iv, "autoencoder_auc": iv,
            "plain": {**arm, "history": {}}, "debiased": {**arm, "history": {}}}


def test_section_has_the_one_table(tmp_path):
    from learn.sections import read_sections

    artefacts.write_artefact_section(tmp_path, [_fake_row("seed"), _fake_row("scheme")])
    sec = read_sections(tmp_path)["artefacts"]
    (table,) = sec.tables
    assert table.columns == artefacts.COLUMNS and len(table.rows) == 2
    assert table.rows[0][1] == "50.0 % [40.0, 60.0]" and "bootstrap 95 %" in sec.text


def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        artefacts.main(["--help"])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        artefacts.main(["study", "--data-dir", str(tmp_path), "--out", str(tmp_path), "--nuisances", "bogus"])
    assert e.value.code == 2
    assert artefacts.main(["discriminate", str(tmp_path / "a.h5"), str(tmp_path / "b.h5")]) == 1
    assert "a.h5: no such data file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="power of two"):
        artefacts.variant_config("amr", sims=4, seed=0, cells=48)


def test_the_mesh_variant_refines_the_reference_grid_from_the_same_seeds():
    ref = artefacts.variant_config("reference", sims=8, seed=3, cells=16)
    amr = artefacts.variant_config("amr", sims=8, seed=3, cells=16)
    fine = artefacts.variant_config("cells128", sims=8, seed=3, cells=16)  # its uniform twin: 2x the cells
    assert (amr.sim.levelmin, amr.sim.levelmax, amr.sim.cells, amr.sim.err_grad_d) == (4, 5, 16, 0.1)
    assert amr.sim.regrid_schedule == "nsubcycle"  # RAMSES's subcycling: RAMSES's own mesh
    assert amr.sim.map_cells == 32 and fine.sim.cells == 128  # cells128 is fixed at 128^3 by its variant
    assert amr.seed == ref.seed and amr.splits == ref.splits and artefacts.NUISANCES["mesh"].b == "amr"
    # the refinement nuisance: the same AMR-lite runs against the uniform grid of levelmin
    refinement = artefacts.NUISANCES["refinement"]
    assert (refinement.a, refinement.b, refinement.real) == ("reference", "amr", "reference")


def test_cli_discriminate_json(seed_twins, tiny_binary, tmp_path, capsys):
    assert artefacts.main(["discriminate", str(tiny_binary), str(tiny_binary), "--method", "spectrum",
                           "--n-boot", "50", "--json", "--no-progress"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got) >= {"point", "lo", "hi", "n_sims"}
