"""learn.report: the study page holds every section and figure, is well-formed, self-contained and renders."""
import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("flax")

from conftest import copy_run  # noqa: E402
from learn import evaluate, pipeline, report, sections  # noqa: E402

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Well-formedness of a page: every tag closed in order, ids unique, images embedded with alt text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.ids, self.images, self.text = [], [], set(), [], []
        self.tags = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a:
            if a["id"] in self.ids:
                self.problems.append(f"duplicate id {a['id']!r}")
            self.ids.add(a["id"])
        if tag == "img":
            self.images.append(a)
            if not a.get("alt"):
                self.problems.append("img without alt text")
            src = a.get("src", "")
            if not src.startswith("data:image/png;base64,"):
                self.problems.append(f"img not embedded: {src[:40]!r}")
            elif not base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG"):
                self.problems.append("embedded image is not a PNG")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def check(self, page: str):
        self.feed(page)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed {self.stack}")
        href = {h[1:] for h in __import__("re").findall(r'href="(#[^"]+)"', page)}
        missing = href - self.ids
        if missing:
            self.problems.append(f"links to missing ids {sorted(missing)}")
        return self


def checked(page: str) -> Checker:
    c = Checker().check(page)
    assert not c.problems, c.problems
    assert "<script" not in page and "src=\"http" not in page  # self-contained
    return c


def test_the_checker_finds_what_it_should():
    bad = Checker().check('<html><body><p id="a">x<p id="a"></p><img src="x.png"></div></body></html>')
    text = " ".join(bad.problems)
    assert "duplicate id" in text and "img without alt" in text and "not embedded" in text and "closes" in text


@pytest.fixture(scope="module")
def rich_run(tiny_run, tiny_sweep, tiny_binary32, tmp_path_factory):
    """The tiny run, also scored on a sweep (the binary classifier on n in [2, 5]) and on other data (another
    resolution), with a section of an analysis."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("report") / "run")
    evaluate.evaluate_run(run, tiny_sweep)
    evaluate.evaluate_run(run, tiny_binary32)
    folder = sections.section_dir(run, "occlusion")
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
                           "AAAABJRU5ErkJggg==")  # a 1x1 PNG
    (folder / "bands.png").write_bytes(png)
    sections.write_section(run, "occlusion", sections.Section(
        "Band occlusion", "Removing k = 4-8 costs 12 points <of> accuracy & more.",
        [sections.Figure("bands.png", "Accuracy with each band removed")],
        [sections.Table("accuracy per band", ["band", "accuracy"], [["4-8", 0.81], ["8-16", None]])]))
    return run


def test_the_study_page_holds_every_section_and_figure(rich_run):
    page = report.study_page([rich_run], n_boot=200)
    c = checked(page)
    text = " ".join(" ".join(c.text).split())
    for heading in ("The answer", "What was done", "Command lines", "The maps", "Every method",
                    "ROC curves and confusion matrices: test", "ROC curves and confusion matrices: holdout",
                    "The classifier on a sweep of n", "Learning curves", "Other data", "Band occlusion (run)"):
        assert heading in text, heading
    # figures: example maps, class spectra, ROC (test, holdout), sweep, learning curves, the section's own
    assert len(c.images) == 7, [i["alt"] for i in c.images]
    alts = " ".join(i["alt"] for i in c.images)
    for what in ("map of each class", "Mean power spectrum", "ROC curves of every method on the test set",
                 "P(Burgers) per simulation", "Learning curves of run", "Accuracy with each band removed"):
        assert what in alts, what
    # the table of every method: the network and the baseline with bootstrap intervals, the study beside them
    assert "pyramid (run)" in text and "spectrum baseline (quadrants)" in text
    assert text.count(" [") >= 8 and "the study (CNN)" in text and "77.0 %" in text
    # generated text, and the warning a 3-per-class split deserves
    assert "Only 3 simulations per class in the test split" in text and "95 % interval" in text
    assert "# run: no command line recorded" in text  # the fixture's run was made through the library
    assert "python -m turbsim.generate" in text and "jax" in text and "Page written" in text
    # the section's text and table are escaped, not markup
    assert "&lt;of&gt; accuracy &amp; more" in page and "4-8" in text
    assert "tiny_binary32_test" in text and "its own score per image" in text


def test_intervals_in_the_table_come_from_the_stored_outputs(tiny_run):
    runs = [report.load_run_data(tiny_run)]
    report.add_intervals(runs, n_boot=300)
    net = runs[0].methods[0]
    sc = net.scored["test"]
    assert sc.outputs is not None and sc.boot is not None
    iv = sc.boot["per_image"]["accuracy"]
    assert iv["lo"] <= sc.metrics["per_image"]["accuracy"] <= iv["hi"]
    assert iv["point"] == pytest.approx(sc.metrics["per_image"]["accuracy"])
    assert sc.boot["per_sim"]["auc"]["point"] == pytest.approx(sc.metrics["per_sim"]["auc"])


def test_a_regression_run_gets_its_scatter(tiny_sweep, tmp_path):
    from conftest import TINY_RUN
    from learn.config import TrainConfig

    cfg = TrainConfig(data=os.fspath(tiny_sweep), **{**TINY_RUN, "task": "regress", "epochs": 1, "dropout": None,
                                                     "augment": ("flip",), "padding": "circular"})  # whole maps
    pipeline.fit(cfg, tmp_path / "reg", progress=False, baselines=("spectrum",))
    page = (tmp_path / "reg" / report.REPORT_FILE).read_text()
    c = checked(page)
    text = " ".join(" ".join(c.text).split())
    assert "How precisely can n be read?" in text and "0.155" in text and "RMSE of n per image [95 %]" in text
    assert any("Predicted against true n" in i["alt"] for i in c.images)


def test_report_command_line(tiny_run, tmp_path, capsys):
    analyses = tmp_path / "tune"
    (analyses / "tuning").mkdir(parents=True)
    sections.write_section(analyses, "tuning", sections.Section("Hyper-parameter search", "Two trials.", [],
                                                                [sections.Table("trials", ["trial"], [[0], [1]])]))
    out = tmp_path / "study.html"
    assert report.main([str(tiny_run), str(analyses), "-o", str(out), "--n-boot", "50"]) == 0
    page = out.read_text()
    checked(page)
    assert "Hyper-parameter search (tune)" in page
    with pytest.raises(SystemExit) as exc:
        report.main([str(tmp_path / "nothing"), "-o", str(out)])
    assert exc.value.code == 2 and "neither a run directory" in capsys.readouterr().err


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_the_page_renders_in_headless_chromium(tiny_run, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser here (Debian: apt-get install chromium) to render the page")
    page = tmp_path / "study.html"
    page.write_text((tiny_run / report.REPORT_FILE).read_text())
    shot = tmp_path / "shot.png"
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "The answer" in r.stdout and "Every method" in r.stdout
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                        "--window-size=1200,3000", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG"
    assert np.frombuffer(shot.read_bytes(), np.uint8).size > 10_000  # something was drawn
