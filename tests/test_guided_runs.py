"""Guided runs end to end: where their samples land (against fresh data of the class), what a
run refuses, its reference, its readouts, the command line (docs/MATH.md §12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.cli import main
from models.datasets import make_dataset
from models.evaluation.metrics import sliced_w2
from models.run.config import RunConfig
from models.run.guided import with_guidance
from models.run.reference import has_reference, with_reference, with_sw2
from models.run.simulate import simulate


def _fresh_class(data, label: int, n: int, gen) -> torch.Tensor:
    """n fresh samples of the data set's class ``label`` (its own sampler, filtered)."""
    out, have = [], 0
    while have < n:
        x, labels = data.sample(4 * n, gen)
        out.append(x[labels == label])
        have += len(out[-1])
    return torch.cat(out)[:n]


@pytest.mark.parametrize(("name", "label"), [("8gaussians", 3), ("moons", 1)])
def test_a_conditional_run_lands_in_its_class_like_fresh_data(name, label):
    """w = 1: ≥ 99 % of the samples in the class, SW2 to fresh class data ≤ 1.2x the floor.

    One sample's SW2 to fresh data swings by ±50 % around the floor with the sample drawn
    (whatever its size: both shrink as 1/√n; fresh samples in the run's place gave ratios of
    0.7-1.4 in groups of 4), so the run's 16,000 particles are compared as 16 independent
    groups of 1000, each with its own fresh set, as the floor is (then 0.88-1.05 over seeds)."""
    n, groups = 1000, 16
    config = RunConfig(dataset=name, guidance_class=label, guidance=1.0, solver="heun",
                       steps=50, particles=n * groups, exact_density=False)  # fmt: skip
    result = with_guidance(simulate(config))
    assert result.guidance_share >= 0.99
    data, gen = make_dataset(name), torch.Generator().manual_seed(11)
    samples = torch.from_numpy(result.trajectories[-1])
    gap = np.mean([sliced_w2(part, _fresh_class(data, label, n, gen), generator=gen)
                   for part in samples.split(n)])  # fmt: skip
    floor = np.mean([sliced_w2(_fresh_class(data, label, n, gen), _fresh_class(data, label, n,
                                                                             gen), generator=gen)
                     for _ in range(groups)])  # fmt: skip
    assert gap / floor <= 1.2
    # the tilted target at w = 1 is the class's own density (the readout, 4 x 1000 samples,
    # is noisier than the comparison above)
    assert result.guidance_gap <= 2.0


def test_above_w_1_the_samples_leave_the_tilted_target():
    """The lesson: at w = 4 the samples are still all in the class, far from p_w."""
    config = RunConfig(dataset="moons", guidance_class=1, guidance=4.0, solver="heun",
                       exact_density=False)  # fmt: skip
    result = with_guidance(simulate(config))
    assert result.guidance_share >= 0.99
    assert result.guidance_gap > 3.0


@pytest.mark.parametrize(("changes", "message"), [
    ({"direction": "forward"}, "reverse ode or sde"),
    ({"kind": "conditional"}, "reverse ode or sde"),
    ({"guidance": 11.0}, r"w must be in \[0, 10\]"),
    ({"guidance": float("nan")}, "finite"),
    ({"guidance_kind": "divergence", "guidance": 0.5}, r"λ of divergence guidance must be in"),
    ({"guidance_kind": "divergence", "guidance": 0.03, "kind": "sde"}, "ODE step"),
    ({"hutchinson": True}, "hutchinson"),
    ({"guidance_kind": "nope"}, "guidance-kind"),
    ({"source": "moons"}, "Gaussian noise"),
    ({"log_density": True}, "unguided"),
    ({"guidance_class": -2}, "label 0..63"),
])  # fmt: skip
def test_settings_guidance_cannot_steer_are_refused_in_one_line(changes, message):
    config = RunConfig(**({"guidance_class": 1} | changes))
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_classifier_guidance_needs_a_class():
    with pytest.raises(ValueError, match="give one"):
        RunConfig(guidance_kind="classifier").validate()


def test_a_class_the_data_set_lacks_stops_the_run_before_it_starts():
    with pytest.raises(ValueError, match=r"no class 2 \(its classes: 0, 1\)"):
        simulate(RunConfig(dataset="moons", guidance_class=2, particles=10, steps=2))


def test_the_reference_follows_the_guided_field():
    """Heun's guided run stays within 1e-2 of the guided reference; a reference of the
    unguided field would end far away (the class is one mode of eight)."""
    config = RunConfig(guidance_class=2, guidance=3.0, solver="heun", particles=200,
                       exact_density=False)  # fmt: skip
    result = with_reference(simulate(config))
    assert result.reference_errors[-1] < 1e-2
    assert result.sw2_ratio is None  # measured against its target instead
    assert with_sw2(result).sw2_ratio is None


def test_hutchinson_runs_have_no_reference_and_repeat_with_their_seed():
    config = RunConfig(guidance_kind="divergence", guidance=0.03, hutchinson=True,
                       particles=300, steps=30, exact_density=False)  # fmt: skip
    first, second = simulate(config), simulate(config)
    assert not has_reference(first)
    assert np.array_equal(first.trajectories, second.trajectories)


def test_a_guided_run_shows_its_tilted_target_as_the_exact_density():
    config = RunConfig(guidance_class=0, guidance=2.0, particles=100, steps=10)
    result = simulate(config)
    cell = (8 / 128) ** 2
    assert result.exact_density.sum((1, 2)) * cell == pytest.approx(np.ones(11), abs=1e-4)
    plain = simulate(RunConfig(particles=100, steps=10))
    # at t = 0 the target holds one mode: nothing near the opposite one (west, (−2, 0))
    west = (slice(60, 68), slice(0, 8 * 8 // 2))
    assert plain.exact_density[-1][west].max() > 0.05
    assert result.exact_density[-1][west].max() < 1e-6


def test_sample_guided_writes_its_settings_and_readouts(tmp_path, capsys):
    out = tmp_path / "guided.npz"
    code = main(["sample", "--dataset", "moons", "--class", "0", "--guidance", "2",
                 "--guidance-kind", "classifier", "--steps", "20", "--particles", "300",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "of the samples in the class" in capsys.readouterr().out
    meta = json.loads(str(np.load(out)["meta"]))
    assert (meta["guidance_class"], meta["guidance_kind"], meta["guidance"]) == (
        0,
        "classifier",
        2.0,
    )
    assert meta["guidance_share"] >= 0.95


def test_sample_refuses_a_class_the_data_set_lacks(tmp_path, capsys):
    code = main(["sample", "--dataset", "moons", "--class", "5", "--out",
                 str(tmp_path / "x.npz")])  # fmt: skip
    assert code == 2
    assert "no class 5 (its classes: 0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_divergence_guidance_on_the_command_line_defaults_to_its_own_lambda(tmp_path):
    out = tmp_path / "div.npz"
    assert main(["sample", "--guidance-kind", "divergence", "--steps", "20", "--particles",
                 "200", "--out", str(out)]) == 0  # fmt: skip
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["guidance"] == pytest.approx(0.03)


def test_labelled_points_from_a_file_give_classes_to_guide_toward(tmp_path, capsys):
    """A third column labels the points; the run guided toward class 1 lands on its points."""
    rng = np.random.default_rng(0)
    left = rng.normal([-2.0, 0.0], 0.2, (40, 2))
    right = rng.normal([2.0, 0.0], 0.2, (40, 2))
    rows = [f"{x},{y},{k}" for k, part in ((0, left), (1, right)) for x, y in part]
    path = tmp_path / "two.csv"
    path.write_text("x,y,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run.npz"
    assert main(["sample", "--points", str(path), "--class", "1", "--steps", "40",
                 "--particles", "300", "--out", str(out)]) == 0  # fmt: skip
    end = np.load(out)["trajectories"][-1]
    assert (end[:, 0] > 1.0).mean() >= 0.99
    assert main(["sample", "--points", str(path), "--class", "2", "--out", str(out)]) == 2
    assert "no class 2 (its classes: 0, 1)" in capsys.readouterr().err


def test_the_arrows_of_a_guided_run_are_its_guided_field():
    """The velocity overlay of a run guided toward the east mode points east at the origin
    late in the run; the unguided field there is 0 by symmetry. The learned − exact
    difference compares the guided network with the guided exact field."""
    from models.learned.checkpoint import load, pretrained_path
    from models.overlay import run_overlay
    from models.run.result import FieldSource

    config = RunConfig(guidance_class=0, guidance=2.0, particles=50, steps=10,
                       exact_density=False, extent=(-1.0, 1.0, -1.0, 1.0))  # fmt: skip
    result = simulate(config)
    arrows = run_overlay(result, 3)
    centre = arrows["velocity"][7, 4]  # t = 0.3, the arrow at the origin (a 3 x 3 grid)
    assert centre[0] > 1.0 and abs(centre[1]) < 1e-3 * centre[0]
    plain = run_overlay(simulate(RunConfig(particles=50, steps=10, exact_density=False,
                                           extent=(-1.0, 1.0, -1.0, 1.0))), 3)  # fmt: skip
    assert np.abs(plain["velocity"][7, 4]).max() < 1e-5
    learned, _, _ = load(pretrained_path("8gaussians", "fm", conditional=True))

    def make(path, exact):
        learned.labeler = exact
        return learned

    run = simulate(config, source=FieldSource("pretrained", make=make))
    diff = run_overlay(run, 3, difference=True)["difference"]
    # a trained network is close to the guided exact field, far from the unguided one
    assert np.abs(diff[7, 4]).max() < 0.3 * centre[0]


def test_odd_class_values_are_read_or_refused_plainly():
    assert RunConfig(guidance_class=np.int64(1)).guidance_class == 1
    with pytest.raises(ValueError, match=r"label 0\.\.63"):
        RunConfig(guidance_class=True).validate()
    with pytest.raises(ValueError, match="true or false"):
        RunConfig(guidance_kind="divergence", hutchinson="no").validate()
    RunConfig(guidance_kind="divergence").validate()  # its own default λ, not w = 1
    assert RunConfig(guidance_kind="divergence").guidance == pytest.approx(0.03)


def test_a_subsample_of_labelled_points_keeps_every_class():
    from models.datasets import Points

    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(0, 1, (1000, 2)), [[3.0, 3.0]]]
    labels = np.r_[np.zeros(1000, int), 1]
    ref = Points(points, labels).reference(600)
    assert sorted(set(ref.labels.tolist())) == [0, 1] and len(ref.points) == 600
    config = RunConfig(dataset="points", n_reference=600, guidance_class=1, particles=100,
                       steps=20, exact_density=False)  # fmt: skip
    end = simulate(config, Points(points, labels)).trajectories[-1]
    assert np.abs(end - 3.0).max() < 0.5  # the lone point of class 1


def test_the_target_readout_is_withheld_where_a_grid_cannot_resolve_the_data():
    from models.class_maps import target_gap
    from models.datasets import Points
    from models.paths import make_path

    rng = np.random.default_rng(0)
    path = make_path("fm")
    wide = np.r_[rng.normal(0, 1, (300, 2)), [[900.0, 900.0]]]
    ref = Points(wide, (wide[:, 0] > 0).astype(int)).reference(600)
    assert target_gap(torch.zeros(1000, 2), ref, path, 1, 1.0) is None
    # points in ±3 at a bandwidth the grid resolves: exact samples of class 1 score ~1
    pts = rng.uniform(-3, 3, (60, 2))
    ref = Points(pts, (pts[:, 0] > 0).astype(int), bandwidth=0.05).reference(600)
    mine = ref.points[ref.labels == 1]
    pick = torch.from_numpy(rng.integers(0, len(mine), 4000))
    samples = mine[pick] + 0.05 * torch.from_numpy(rng.normal(size=(4000, 2)))
    assert target_gap(samples.float(), ref, path, 1, 1.0) < 1.3


def test_divergence_guidance_toward_a_class_takes_the_conditional_network(tmp_path):
    out = tmp_path / "d.npz"
    assert (
        main(
            [
                "sample",
                "--field",
                "learned",
                "--class",
                "1",
                "--guidance-kind",
                "divergence",
                "--steps",
                "20",
                "--particles",
                "200",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["weights"].endswith("8gaussians-fm-cond.safetensors")
    assert meta["guidance_share"] >= 0.95


def test_a_run_without_a_target_readout_says_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    wide = np.r_[rng.normal(0, 1, (300, 2)), [[900.0, 900.0]]]
    path = tmp_path / "wide.csv"
    path.write_text("x,y,label\n" + "".join(f"{x},{y},{int(x > 0)}\n" for x, y in wide))
    out = tmp_path / "w.npz"
    assert main(["sample", "--points", str(path), "--class", "1", "--steps", "10",
                 "--particles", "100", "--out", str(out)]) == 0  # fmt: skip
    assert "no target readout" in capsys.readouterr().out
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["guidance_gap"] is None and meta["guidance_share"] > 0.9


def test_the_readout_and_the_caption_name_the_guidance():
    from app.export.caption import settings_text
    from app.session.readouts import solver_text

    result = simulate(RunConfig(guidance_class=0, guidance=2.0, particles=50, steps=5))
    assert "CFG w=2 toward class 0" in settings_text(result)
    assert "CFG w=2 toward class 0" in solver_text(result)
    div = simulate(RunConfig(guidance_kind="divergence", hutchinson=True, particles=50,
                             steps=5))  # fmt: skip
    assert "divergence guidance λ=0.03 (Hutchinson)" in solver_text(div)
    assert "guid" not in settings_text(simulate(RunConfig(particles=50, steps=5)))
