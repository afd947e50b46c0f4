"""The probability current J = μρ − D∇ρ of the Fokker–Planck equation and its two parts
(docs/MATH.md §6.1), against independent truth: the closed-form current of a moving Gaussian
(derivatives of a, b by central differences), the continuity equation ∂ρ/∂t + ∇·J = 0 by
central differences in t and x, the identity drift + diffusion = J, finiteness at both ends,
and how the arrows show them (the two parts on one scale, the current on its own), on the
page, in exports, and what the command line refuses."""

import math

import numpy as np
import pytest
import torch

from app.cli import main
from app.ui.frames import ARROW_CELLS, pack_arrows
from models.current import CURRENT_KINDS, current_at, current_frames
from models.datasets import Reference, make_dataset
from models.fields import ExactField
from models.overlay import arrow_grid, field_frames, run_overlay
from models.paths import PATHS, make_path
from models.run.config import RunConfig
from models.run.simulate import simulate
from models.schedules import make_schedule

F64 = torch.float64


def path_named(name: str):
    return make_path(name, make_schedule("linear"))


def moons_field(name: str) -> ExactField:
    return ExactField(path_named(name), make_dataset("moons").reference(), dtype=F64)


def coefficients(path, t: float) -> tuple[float, float]:
    c = path.coefficients(torch.tensor(t, dtype=F64))
    return float(c.a), float(c.b)


@pytest.mark.parametrize("name", ["fm", "vp", "ve", "subvp", "trig"])
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_the_current_of_one_gaussian_is_its_closed_form(name, t):
    """ρ_t = N(a m, c² I), c² = a² s² + b², is the image of N(0, I) under x = a m + c z, so
    its current is ρ (ȧ m + (ċ/c)(x − a m)); the drift part is (ȧ/a) x ρ and the diffusion
    part −½ g² ∇ρ with g² = d(b²)/dt − 2 (ȧ/a) b² (docs/MATH.md §2)."""
    path = path_named(name)
    m, s = torch.tensor([[0.7, -1.3]], dtype=F64), 0.3
    field = ExactField(path, Reference(m, torch.zeros(1, dtype=torch.long), s), dtype=F64)
    x = torch.tensor([[0.0, 0.0], [1.0, -1.0], [-0.5, 0.8], [2.0, 1.0]], dtype=F64)
    h = 1e-6
    (a0, b0), (a1, b1), (a, b) = (coefficients(path, u) for u in (t - h, t + h, t))
    c, c0, c1 = (math.sqrt(ai**2 * s**2 + bi**2) for ai, bi in ((a, b), (a0, b0), (a1, b1)))
    da, dc, db2 = (a1 - a0) / (2 * h), (c1 - c0) / (2 * h), (b1**2 - b0**2) / (2 * h)
    f = da / a
    g2 = db2 - 2 * f * b**2
    r = x - a * m
    rho = torch.exp(-(r**2).sum(1, keepdim=True) / (2 * c**2)) / (2 * math.pi * c**2)
    want = {
        "current": rho * (da * m + (dc / c) * r),
        "drift_current": f * x * rho,
        "diffusion_current": -0.5 * g2 * (-r / c**2) * rho,  # ∇ρ = −ρ (x − a m)/c²
    }
    got = current_at(field, path, x, t)
    for kind in CURRENT_KINDS:
        scale = float(want[kind].abs().max())
        np.testing.assert_allclose(got[kind], want[kind], rtol=1e-6, atol=1e-7 * scale)


@pytest.mark.parametrize(
    "name, times", [("fm", (0.05, 0.5, 0.95)), ("vp", (0.02, 0.3, 0.9)), ("ve", (0.1, 0.5, 0.95))]
)
def test_the_current_carries_the_density_continuity_by_differences(name, times):
    """∂ρ/∂t + ∇·J = 0 at points drawn from p_t of the moons' mixture, both derivatives by
    central differences of the exact density and of J."""
    field = moons_field(name)
    path = field.path
    ref = field.reference.points.to(F64)
    g = torch.Generator().manual_seed(1)
    h_t = h_x = 1e-5
    for t in times:
        a, b = coefficients(path, t)
        c = math.sqrt(a**2 * field.sigma**2 + b**2)
        pick = torch.randint(len(ref), (6,), generator=g)
        x = a * ref[pick] + c * torch.randn(6, 2, generator=g, dtype=F64)

        def rho(u, y):
            return torch.exp(field.log_density(y, u))

        d_t = (rho(t + h_t, x) - rho(t - h_t, x)) / (2 * h_t)
        terms = [d_t]
        for axis in range(2):
            e = torch.zeros(2, dtype=F64)
            e[axis] = h_x
            up = current_at(field, path, x + e, t)["current"][:, axis]
            down = current_at(field, path, x - e, t)["current"][:, axis]
            terms.append((up - down) / (2 * h_x))
        residual = sum(terms)
        size = sum(term.abs() for term in terms)
        assert bool((size > 1e-5).all()), "points where nothing moves test nothing"
        assert float((residual.abs() / size).max()) < 1e-6, (name, t)


@pytest.mark.parametrize("name", PATHS)
def test_drift_and_diffusion_add_up_to_the_current_which_is_density_times_velocity(name):
    field = moons_field(name)
    x = torch.cat([arrow_grid((-4, 4, -4, 4), 7).to(F64), field.reference.points[::16].to(F64)])
    for t in (0.05, 0.3, 0.7, 0.97):
        got = current_at(field, field.path, x, t)
        total = got["drift_current"] + got["diffusion_current"]
        scale = float(got["drift_current"].abs().max() + got["diffusion_current"].abs().max())
        np.testing.assert_allclose(total, got["current"], rtol=1e-9, atol=1e-12 * scale)
        rho = torch.exp(field.log_density(x, t))[:, None]
        seen = rho[:, 0] > 1e-200
        v = field(x, t, ("velocity",))["velocity"]
        np.testing.assert_allclose((got["current"] / rho)[seen], v[seen], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose((total / rho)[seen], v[seen], rtol=1e-7, atol=1e-9)


ENDS = (0.0, math.nextafter(0.0, 1.0), math.nextafter(1.0, 0.0), 1.0)


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_every_current_is_finite_at_both_ends_and_one_ulp_inside(name, dtype):
    path = path_named(name)
    field = ExactField(path, make_dataset("moons").reference(), dtype=dtype)
    pts = torch.cat([arrow_grid((-40, 40, -40, 40), 9), arrow_grid((-3, 3, -3, 3), 9)]).to(dtype)
    frames = current_frames(field, path, pts, ENDS)
    assert set(frames) == set(CURRENT_KINDS)
    for kind, value in frames.items():
        assert value.shape == (len(ENDS), len(pts), 2) and np.isfinite(value).all(), kind
    assert np.abs(frames["current"]).max() > 0  # not finite by being all 0
    overlay = field_frames(field, path, pts, torch.tensor(ENDS[::-1], dtype=F64), 1.0, field)
    assert all(np.isfinite(v).all() for v in overlay.values())


@pytest.mark.parametrize("name", ["fm", "vp"])
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["forward", "reverse"])
def test_the_overlay_reverses_the_current_with_the_run_and_keeps_its_parts_adding_up(
    name, direction
):
    field = ExactField(path_named(name), make_dataset("moons").reference())  # float32, as a run
    pts = arrow_grid((-4, 4, -4, 4), 9)
    times = torch.tensor([0.2, 0.6, 0.95], dtype=F64)
    if direction < 0:
        times = times.flip(0)
    out = field_frames(field, field.path, pts, times, 0.0, current=field)
    forward = current_frames(field, field.path, pts, times)
    for kind in CURRENT_KINDS:
        np.testing.assert_allclose(out[kind], direction * forward[kind], rtol=1e-6, atol=0)
    np.testing.assert_allclose(
        out["drift_current"] + out["diffusion_current"], out["current"], rtol=1e-3, atol=1e-4
    )
    # J/ρ is the velocity arrow, reversed alike
    rho = np.stack([torch.exp(field.log_density(pts, float(t))).numpy() for t in times])
    seen = rho > 1e-6
    np.testing.assert_allclose(
        out["current"][seen] / rho[seen][:, None], out["velocity"][seen], rtol=1e-4, atol=1e-5
    )


def test_the_two_parts_share_one_scale_and_the_current_has_its_own():
    field = ExactField(path_named("fm"), make_dataset("8gaussians").reference())
    pts = arrow_grid((-4, 4, -4, 4), 17)
    times = torch.tensor([0.0, 0.3, 0.9, 0.999, 1.0], dtype=F64)
    arrows = field_frames(field, field.path, pts, times, 1.0, current=field)
    arrows["points"] = pts.numpy()
    extent, n = (-4.0, 4.0, -4.0, 4.0), 17
    cell = 8 / n
    packed = pack_arrows(arrows, extent, n)
    shown = {k: packed[k][0].reshape(len(times), 2, -1) for k in CURRENT_KINDS}
    longest = {k: np.linalg.norm(v, axis=1).max(1) for k, v in shown.items()}
    parts = np.maximum(longest["drift_current"], longest["diffusion_current"])
    # (not at t = 1, where f = −∞ and g² = ∞: the parts are reported as 0, J is not)
    np.testing.assert_allclose(parts[:-1], 2 * ARROW_CELLS * cell, rtol=1e-5)  # none clipped
    np.testing.assert_allclose(longest["current"], 2 * ARROW_CELLS * cell, rtol=1e-5)
    assert not shown["drift_current"][-1].any() and shown["current"][-1].any()
    # the parts on one scale: their ratio on screen is their ratio in the field
    raw = {k: np.linalg.norm(arrows[k], axis=-1) for k in ("drift_current", "diffusion_current")}
    screen = {k: np.linalg.norm(shown[k], axis=1) for k in raw}
    i, big = 1, raw["drift_current"][1] > 1e-3 * raw["drift_current"][1].max()
    np.testing.assert_allclose(
        screen["diffusion_current"][i][big] / screen["drift_current"][i][big],
        raw["diffusion_current"][i][big] / raw["drift_current"][i][big], rtol=1e-4,
    )  # fmt: skip
    # the same display whichever kind is asked for alone (the page packs only the one shown)
    for kind in CURRENT_KINDS:
        alone = pack_arrows(arrows, extent, n, kinds=(kind,))[kind][0]
        np.testing.assert_array_equal(alone, packed[kind][0])
    # near the noise end of fm the parts nearly cancel: J is short beside them in the field,
    # which is why it is drawn on its own scale
    j, d = (np.linalg.norm(arrows[k][3], axis=-1).max() for k in ("current", "drift_current"))
    assert j < 0.05 * d


@pytest.mark.parametrize("dataset, source", [("moons", None), ("checkerboard", None),
                                             ("moons", "8gaussians")])  # fmt: skip
def test_the_overlay_s_grid_density_is_the_pointwise_density(dataset, source):
    """What the overlay weighs its currents with (separable products on the arrow grid)
    against exp(log p_t) point by point."""
    from models.current import grid_density
    from models.source_flow import source_field

    path = path_named("fm")
    data = make_dataset(dataset)
    field = ExactField(path, data.reference()) if source is None else \
        source_field(path, data, source)  # fmt: skip
    extent, n = (-4.0, 4.0, -4.0, 4.0), 17
    pts = arrow_grid(extent, n).to(F64)
    times = [0.0, 0.02, 0.4, 1.0]
    got = grid_density(field, times, extent, n)
    for i, t in enumerate(times):
        want = torch.exp(field.log_density(pts, t))
        peak = float(want.max())
        big = want > 1e-6 * peak
        np.testing.assert_allclose(got[i][big], want[big], rtol=2e-4)
        assert float((got[i] - want).abs().max()) < 2e-6 * peak


def small(**options) -> RunConfig:
    return RunConfig(particles=40, steps=4, exact_density=False, **options)


def test_which_runs_have_which_current_arrows():
    exact = run_overlay(simulate(small(dataset="moons")), 5)
    assert set(CURRENT_KINDS) <= set(exact)
    source = run_overlay(simulate(small(dataset="moons", source="8gaussians")), 5)
    assert "current" in source and not {"drift_current", "diffusion_current"} & set(source)
    assert np.abs(source["current"]).max() > 0
    guided = run_overlay(simulate(small(dataset="moons", guidance_class=0, guidance=2.0)), 5)
    assert not set(CURRENT_KINDS) & set(guided) and "velocity" in guided


def test_a_learned_run_draws_the_current_of_the_exact_density():
    from app.session.state import FlowState

    kw = dict(dataset="moons", steps=4, particles=100, overlay="current")
    learned, exact = FlowState(field="pretrained", **kw), FlowState(field="exact", **kw)
    learned.recompute()
    exact.recompute()
    for kind in CURRENT_KINDS:
        np.testing.assert_allclose(learned.arrows[kind], exact.arrows[kind], rtol=1e-5, atol=1e-7)
    assert np.abs(learned.arrows["velocity"] - exact.arrows["velocity"]).max() > 1e-3


RUN = ("--dataset", "moons", "--steps", "8", "--particles", "300", "--resolution", "48")


def test_the_command_line_exports_the_current_arrows(tmp_path):
    from tests.test_export_overlays import SIZE, changed, read

    frames = {}
    for name, extra in (("plain", ()), ("diffusion", ("--overlay", "diffusion_current"))):
        out = tmp_path / f"{name}.gif"
        assert main(["export", *RUN, "--size", str(SIZE), "--trail", "0", *extra, "--out",
                     str(out)]) == 0  # fmt: skip
        frames[name] = read(out)[5].astype(int)
    assert changed(frames["diffusion"][:SIZE, :SIZE], frames["plain"][:SIZE, :SIZE]).sum() > 200


@pytest.mark.parametrize(
    "command, bad, said",
    [
        ("export", ("--class", "0", "--overlay", "current"), "guided run"),
        ("export", ("--source", "8gaussians", "--overlay", "drift_current"), "no diffusion"),
        ("compare", ("--a", "--class 1", "--overlay", "diffusion_current"), "run A: "),
    ],
)
def test_currents_a_run_does_not_have_are_refused_in_one_line(
    command, bad, said, tmp_path, monkeypatch, capsys
):
    def no_compute(*_args, **_kwargs):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr("models.run.simulate.simulate", no_compute)
    monkeypatch.setattr("models.compare.pair.simulate_pair", no_compute)
    out = tmp_path / "run.gif"
    assert main([command, *RUN, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowscope: error: ") and err.count("\n") == 1 and said in err
    assert not out.exists()
