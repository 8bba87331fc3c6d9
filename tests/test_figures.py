"""Tests of turbsim.figures: maps with axes in pc and a title (n, axis, time), written atomically."""
import numpy as np
import pytest

from turbsim.figures import map_title, new_figure, plot_map, save_map_png


@pytest.mark.parametrize("axis,labels", [(0, ("y [pc]", "z [pc]")), (1, ("x [pc]", "z [pc]")),
                                         (2, ("x [pc]", "y [pc]"))])
def test_axes_in_pc_and_title(axis, labels):
    image = np.arange(12.0).reshape(4, 3)  # indexed [first remaining axis, second]
    fig, (ax,) = new_figure()
    im = plot_map(ax, image, 10.0, n=4.0, axis=axis, time_myr=0.522359, prefix="RAMSES")
    assert (ax.get_xlabel(), ax.get_ylabel()) == labels
    assert ax.get_title() == f"RAMSES: n = 4, along {'xyz'[axis]}, t = 0.522 Myr"
    assert tuple(im.get_extent()) == (0.0, 10.0, 0.0, 10.0)
    # the first index runs horizontally, the origin is at the lower left
    np.testing.assert_array_equal(im.get_array(), image.T)
    assert im.origin == "lower"
    assert len(fig.axes) == 2  # the map and its colour bar


def test_title_parts_are_optional():
    assert map_title() == ""
    assert map_title(time_myr=1.0) == "t = 1 Myr"
    assert map_title(prefix="turbsim") == "turbsim"


@pytest.mark.parametrize("image,box,axis,match", [
    (np.ones((2, 2, 2)), 10.0, 2, "2D"),
    (np.array([[1.0, np.nan]]), 10.0, 2, "non-finite"),
    (np.ones((2, 2)), 0.0, 2, "box_pc = 0.0"),
    (np.ones((2, 2)), float("inf"), 2, "box_pc = inf"),
    (np.ones((2, 2)), 10.0, 3, "axis = 3"),
])
def test_bad_input(image, box, axis, match):
    fig, (ax,) = new_figure()
    with pytest.raises(ValueError, match=match):
        plot_map(ax, image, box, axis=axis)


def test_save_map_png_is_atomic(tmp_path, monkeypatch):
    path = save_map_png(tmp_path / "m.png", np.random.default_rng(1).normal(size=(8, 8)), 5.0,
                        n=11 / 3, axis=0, time_myr=0.5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = path.read_bytes()

    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        with open(args[0], "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_map_png(path, np.zeros((8, 8)), 5.0)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.png"]
