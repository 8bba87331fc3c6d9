"""What a network looks at (learn.explain), t-SNE (learn.embed) and the sections they write (learn.sections)."""
import json

import numpy as np
import pytest

pytest.importorskip("flax")

import jax  # noqa: E402
from flax import nnx  # noqa: E402

from learn import embed, explain, sections  # noqa: E402
from learn.baselines import hog_features  # noqa: E402
from learn.data import load_split  # noqa: E402
from learn.metrics import softmax  # noqa: E402
from learn.rundir import load_run  # noqa: E402
from learn.transforms import eval_set  # noqa: E402

from conftest import copy_run  # noqa: E402

S = 16
SQUARE = (slice(3, 7), slice(9, 13))
"""Where the planted feature sits (4 x 4 pixels of a 16 x 16 image)."""


class LocalCNN(nnx.Module):
    """A 3x3 convolution and a dense layer over every position: small, and it knows where things are."""

    def __init__(self, size: int, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.dense = nnx.Linear(4 * size * size, 2, rngs=rngs)

    def __call__(self, x, *, rngs=None):
        h = jax.nn.relu(self.conv(x[..., None]))
        return self.dense(h.reshape(len(x), -1))


@pytest.fixture(scope="module", params=["local", pytest.param("study_cnn", marks=pytest.mark.slow)])
def planted(request):
    """A network trained to tell noise from noise with a bright square at a fixed place (class 1):
    a small local CNN, or (slow) the study's network."""
    from learn.models import build_model
    from learn.transfer import fit_images

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (128, S, S)).astype(np.float32)
    y = np.arange(len(x)) % 2
    x[y == 1, SQUARE[0], SQUARE[1]] += 2.5
    if request.param == "local":
        model, lr = LocalCNN(S, rngs=nnx.Rngs(0)), 1e-2
    else:
        model, lr = build_model("study_cnn", task="classify", input_size=S, seed=0), 1e-3
    fit_images(model, x, y, steps=60, batch_size=32, learning_rate=lr, augment=False)
    return model, x, y


# --------------------------------------------------------------------------------------
# saliency
# --------------------------------------------------------------------------------------
def test_saliency_concentrates_on_a_planted_feature(planted):
    model, x, y = planted
    from learn.predict import predict

    assert (softmax(predict(model, x)).argmax(1) == y).mean() == 1.0  # it learned the square
    near = np.zeros((S, S), bool)
    near[2:8, 8:14] = True  # the square and a pixel around it (a 3x3 convolution smears it)
    burgers = x[y == 1][:8]
    w = explain.output_weights("classify", 2, np.ones(len(burgers)))
    for method in explain.METHODS:
        sal = explain.saliency(model, burgers, w, method, samples=8, steps=16)
        assert sal.shape == burgers.shape and np.isfinite(sal).all()
        a = np.abs(sal)
        density = a[:, near].mean() / a[:, ~near].mean()
        assert density > 2.0, (method, density)  # saliency per pixel, at the square against elsewhere
        peak = np.unravel_index(a.mean(0).argmax(), (S, S))
        assert near[peak], (method, peak)


def test_integrated_gradients_add_up_to_the_change_of_the_output(planted):
    # completeness: the attributions of an image sum to f(x) - f(0), f the explained output
    model, x, y = planted
    from learn.predict import predict

    imgs = x[y == 1][:4]
    w = explain.output_weights("classify", 2, np.ones(len(imgs)))
    ig = explain.saliency(model, imgs, w, "integrated", steps=64)
    f = lambda z: (predict(model, z) * w).sum(1)  # noqa: E731
    change = f(imgs) - f(np.zeros_like(imgs))
    np.testing.assert_allclose(ig.sum(axis=(1, 2)), change, rtol=0.05, atol=0.05 * np.abs(change).max())


def test_saliency_of_a_trained_run_is_finite_with_the_inputs_shape(tiny_run):
    run = load_run(tiny_run)
    ms = load_split(run.config.data, "test")
    x, _ = eval_set(ms.maps[:1], run.normaliser, run.image_size, run.full_maps)
    w = explain.output_weights("classify", 2, np.arange(len(x)) % 2)
    for method in explain.METHODS:
        sal = explain.saliency(run.model, x, w, method, samples=2, steps=4)
        assert sal.shape == x.shape and sal.dtype == np.float32 and np.isfinite(sal).all()
    # a regression's saliency is d n / dx: the weights carry the target scaler's std
    assert explain.output_weights("regress", 1, np.zeros(2), n_scale=0.5).tolist() == [[0.5], [0.5]]
    with pytest.raises(ValueError, match="'edges'"):
        explain.saliency(run.model, x, w, "edges")


def test_pick_examples_finds_right_and_wrong_ones_of_each_class():
    out = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 0.5], [0.0, 1.0], [5.0, 0.0]])  # logits
    truth = np.array([0, 0, 1, 1, 0])
    picks = explain.pick_examples("classify", out, truth, per_group=1)
    got = {g: i for i, g, _ in picks}
    assert got == {"kolmogorov, right": 4, "kolmogorov, wrong": 1, "burgers, right": 3, "burgers, wrong": 2}


# --------------------------------------------------------------------------------------
# spectra and band occlusion
# --------------------------------------------------------------------------------------
def _field(rng, m, k_lo, k_hi, s=32):
    """Random images with power only in ``k_lo <= |k| < k_hi``."""
    k = np.fft.fftfreq(s) * s
    kk = np.hypot(k[:, None], k[None, :])
    f = np.fft.fft2(rng.normal(size=(m, s, s))) * ((kk >= k_lo) & (kk < k_hi))
    return np.fft.ifft2(f).real.astype(np.float32)


def test_band_occlusion_of_a_band_without_information_changes_nothing():
    # two classes that differ only by the power in 2 <= k < 4 (the rest is shared noise at
    # 8 <= k < 16), read by a detector of that band: removing the band costs everything,
    # removing a band without power changes not one pixel nor one score
    rng = np.random.default_rng(3)
    m = 64
    sim = np.arange(m) // 2  # two images per simulation
    klass = sim % 2
    x = _field(rng, m, 8, 16) + _field(rng, m, 2, 4) * (0.2 + 0.8 * klass)[:, None, None]
    x /= x.std()

    def band_power(images):  # mean square of the images' 2 <= k < 4 part
        return np.mean((images - explain.band_stop(images, 2, 4)) ** 2, axis=(1, 2))

    p = band_power(x)
    threshold = 0.5 * (p[klass == 0].mean() + p[klass == 1].mean())

    def predict_fn(images):  # logits: kolmogorov's the threshold, burgers' the band power
        return np.c_[np.full(len(images), threshold), band_power(images)]

    res = explain.band_occlusion(predict_fn, x, sim, klass[::2], task="classify",
                                 edges=np.array([1.0, 2.0, 4.0, 8.0, 16.0, np.inf]))
    assert res["reference"]["per_image"] == 1.0
    by = {(b["k_lo"], b["k_hi"]): b for b in res["bands"]}
    for empty in ((1.0, 2.0), (4.0, 8.0), (16.0, np.inf)):
        assert by[empty]["max_abs_image_change"] < 1e-5
        assert by[empty]["per_image"] == 1.0 and by[empty]["change_per_sim"] == 0.0
        assert by[empty]["variance_fraction"] < 1e-8
    assert by[(2.0, 4.0)]["per_image"] == 0.5  # every image called kolmogorov: chance
    assert by[(8.0, 16.0)]["per_image"] == 1.0 and by[(8.0, 16.0)]["variance_fraction"] > 0.3


def test_band_occlusion_of_a_regression_against_the_mean_answer():
    # a "network" that always answers the mean n scores exactly the no-skill RMSE, whatever band is removed
    rng = np.random.default_rng(4)
    x = _field(rng, 12, 1, 16)
    n = np.array([3.0, 3.5, 4.0, 4.5])
    res = explain.band_occlusion(lambda im: np.zeros((len(im), 1)), x, np.repeat(np.arange(4), 3), n,
                                 task="regress", n_mean=float(n.mean()), edges=np.array([1.0, 4.0, np.inf]))
    assert res["metric"] == "rmse"
    assert res["no_skill"]["per_sim"] == pytest.approx(float(np.std(n)))
    for b in res["bands"]:
        assert b["per_image"] == pytest.approx(res["no_skill"]["per_image"]) and b["change_per_sim"] == 0.0


def test_mean_spectrum_puts_the_power_where_it_is():
    rng = np.random.default_rng(0)
    k, f = explain.mean_spectrum(_field(rng, 4, 5, 7))
    assert f.sum() == pytest.approx(1.0)
    assert f[(k >= 5) & (k <= 7)].sum() > 0.99  # shells are |k| rounded: 5, 6 and (a few modes) 7
    assert 5.0 <= explain.median_wavenumber(k, f) <= 6.5


# --------------------------------------------------------------------------------------
# t-SNE and HOG features
# --------------------------------------------------------------------------------------
def test_tsne_and_hog_features_are_deterministic():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(30, 24, 24))
    h1, h2 = hog_features(images), hog_features(images.copy())
    assert h1.shape == (30, 2 * 2 * 8 * (12 - 1) ** 2) and np.array_equal(h1, h2)  # 12 cells of 2 px, 8 orientations
    e1, e2 = embed.tsne(h1, seed=3, perplexity=8), embed.tsne(h2, seed=3, perplexity=8)
    assert e1.shape == (30, 2) and np.array_equal(e1, e2)


def test_knn_score_measures_separation():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 50)
    blobs = rng.normal(size=(100, 2)) + 6.0 * labels[:, None]
    assert embed.knn_score(blobs, labels) == 1.0
    assert 0.3 < embed.knn_score(rng.normal(size=(100, 2)), labels) < 0.7  # mixed at random: chance
    n = np.linspace(3, 4.5, 100)
    assert embed.knn_score(np.c_[n, np.zeros(100)], n, classes=False) < 0.05  # ordered by n: neighbours agree
    assert embed.knn_score(rng.normal(size=(100, 2)), n, classes=False) > 0.3


# --------------------------------------------------------------------------------------
# a run's sections
# --------------------------------------------------------------------------------------
def test_explain_run_writes_every_section(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    opts = explain.ExplainOptions(per_group=1, samples=2, steps=4, spectrum_images=8, tsne_images=60,
                                  perplexity=10, tsne_iterations=250, hog_train_images=100)
    written = explain.explain_run(run_dir, options=opts)
    assert sorted(written) == ["hog_svm", "occlusion", "saliency", "tsne"]
    got = sections.read_sections(run_dir)
    assert sorted(got) == sorted(written)
    for name, sec in got.items():
        assert sec.title and sec.text and sec.figures, name
        for fig in sec.figures:
            assert sec.figure_path(fig).read_bytes()[:4] == b"\x89PNG", (name, fig.file)
        assert "read these numbers as anecdotes" in sec.text  # a test split of 6 simulations
    occ = got["occlusion"].data
    assert [b["k_lo"] for b in occ["bands"]] == [1.0, 2.0]  # octaves of an 8-px image; the last open above
    acc = json.loads((run_dir / "metrics.json").read_text())["test"]["per_image"]["accuracy"]
    assert occ["reference"]["per_image"] == pytest.approx(acc)  # the run's own score, untouched inputs
    assert f"{occ['reference']['per_image']:.3f}" in got["occlusion"].text
    assert set(got["hog_svm"].data["methods"]) == {"pyramid", "HOG + SVM"}
    assert got["tsne"].data["colour_by"] == "class"
    # the other split gets its own sections
    more = explain.explain_run(run_dir, split="train", analyses=("occlusion",), options=opts)
    assert list(more) == ["occlusion_tiny_binary_train"]


def test_explain_command_line(tiny_run, tmp_path, capsys):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    assert explain.main([str(run_dir), "--analyses", "occlusion", "--bands", "1", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out) == {"occlusion": str(run_dir / "occlusion" / "section.json")}
    with pytest.raises(SystemExit) as exc:
        explain.main([str(run_dir), "--analyses", "occlusion", "--split", "holdout"])
    assert exc.value.code == 2
    assert "holdout" in capsys.readouterr().err


def test_sections_are_checked_and_read_back(tmp_path):
    sec = sections.Section("t", "text", [sections.Figure("missing.png", "c")])
    with pytest.raises(sections.SectionError, match="missing.png"):
        sections.write_section(tmp_path, "a", sec)
    bad = sections.Section("t", "text", tables=[sections.Table("tab", ["x", "y"], [[1]])])
    with pytest.raises(sections.SectionError, match="row 0 has 1 cells for 2 columns"):
        sections.write_section(tmp_path, "a", bad)
    with pytest.raises(sections.SectionError, match="'../b'"):
        sections.write_section(tmp_path, "../b", bad)
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "a" / "f.png").write_bytes(b"png")
    good = sections.Section("t", "text", [sections.Figure("f.png", "c")], [sections.Table("tab", ["x"], [[1]])],
                            {"v": np.float32(0.5), "a": np.arange(2), "nan": float("nan")})
    sections.write_section(tmp_path, "a", good)
    back = sections.read_sections(tmp_path)["a"]
    assert back == sections.Section("t", "text", good.figures, good.tables, {"v": 0.5, "a": [0, 1], "nan": None})
    assert back.figure_path(back.figures[0]) == tmp_path / "a" / "f.png"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / sections.SECTION_FILE).write_text('{"title": 3}')
    with pytest.raises(sections.SectionError, match="'title' must be a string"):
        sections.read_sections(tmp_path)
