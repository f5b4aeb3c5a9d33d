"""The loss-curve figure's seed band, against values worked out by hand."""

import random

import pytest

from coe.analysis.figures import curve_colors, loss_curves, seed_band


def test_seed_band_spans_the_other_runs_and_the_baseline_where_all_have_a_loss():
    base = {50: 2.0, 100: 1.5, 150: 1.2}
    others = [([50, 100, 150], [2.1, 1.4, 1.25]), ([50, 100], [1.9, 1.55])]
    steps, low, high = seed_band(base, others)
    assert steps == [50, 100]  # step 150: the second run has no loss there
    assert low == pytest.approx([-0.1, -0.1]) and high == pytest.approx([0.1, 0.05])
    # every other run above the baseline: the band still starts at the baseline itself
    steps, low, high = seed_band(base, [([50], [2.3])])
    assert (steps, low) == ([50], [0.0]) and high == pytest.approx([0.3])


def test_loss_curves_draws_many_runs_with_and_without_a_band_and_one_run(tmp_path):
    rng = random.Random(0)

    def records(offset: float) -> list[dict]:
        return [
            {"split": split, "step": step, "loss": 3.0 / step**0.3 + offset + rng.uniform(0, 0.01)}
            for step in range(10, 110, 10)
            for split in ("train", "val")
        ]

    curves = {f"run{i}": records(0.01 * i) for i in range(8)}

    def width(path) -> int:  # pixels, from the PNG's header
        data = path.read_bytes()
        assert data[:4] == b"\x89PNG"
        return int.from_bytes(data[16:20], "big")

    bands = {"banded": {"run0-seed1": records(0.02)}, "plain": None, "one": {"x": records(0)}}
    widths = {}
    for name, band in bands.items():
        chosen = {"run0": curves["run0"]} if name == "one" else curves  # one curve: no difference panel
        widths[name] = width(loss_curves(tmp_path / f"{name}.png", chosen, band=band))
    few = width(loss_curves(tmp_path / "few.png", {k: curves[k] for k in ("run0", "run1")}))
    # three panels 16 inches wide at 110 dpi; more than six curves: 2.5 inches more for the legend beside
    assert few == 16 * 110 and widths["banded"] == widths["plain"] == int(18.5 * 110)
    assert widths["one"] == 12 * 110  # two panels, one curve: no legend beside, the band not drawn


@pytest.mark.parametrize("n", [1, 9, 10, 18])
def test_curves_get_distinct_colours_none_grey_like_the_seed_band(n):
    colors = curve_colors(n)
    assert len(set(colors[:n])) == n  # up to tab20's eighteen non-grey colours, every curve its own
    assert all(len(set(c)) > 1 for c in colors)  # grey: equal red, green and blue
