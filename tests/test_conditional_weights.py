"""The shipped class-conditional weights, ``flowscope train --conditional``, and the Train
panel's "class-conditional" choice.

The truth a conditional field is judged against is independent of the network: the label of
the data set's mixture component nearest a sample at t = 0 (``ExactField.nearest_label``).
"""

import json
import os

import panel as pn
import pytest
import torch

from app.cli import main
from app.session.fields import conditional_pretrained
from app.session.state import FlowState
from app.session.training_job import TrainingJob
from app.ui.train_panel import TrainPanel
from models.datasets import DATASETS, make_dataset
from models.learned.checkpoint import WEIGHTS_DIR, load, pretrained_key, pretrained_path
from models.learned.conditional import class_shares

with open(os.path.join(WEIGHTS_DIR, "manifest.json")) as f:
    MANIFEST = json.load(f)


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_conditional_weights_have_their_own_name():
    assert pretrained_key("moons", "fm", conditional=True) == "moons-fm-cond"
    assert pretrained_path("moons", "fm", True).endswith(
        os.path.join("assets", "weights", "moons-fm-cond.safetensors")
    )
    assert pretrained_path("moons", "fm") == pretrained_path("moons", "fm", False)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_shipped_conditional_model_loads_with_the_data_sets_classes(name):
    path = pretrained_path(name, "fm", conditional=True)
    field, arch, manifest = load(path)
    n = make_dataset(name).n_labels
    assert arch.n_classes == field.n_classes == n and arch.process == "fm"
    assert (arch.width, arch.depth) == (128, 3)  # the recipe of the unconditional fm weights
    assert os.path.getsize(path) < 200_000
    entry = MANIFEST[f"{name}-fm-cond"]
    assert entry["architecture"]["n_classes"] == n and entry["conditional"] is True
    assert len(entry["class_shares"]) == n and entry["class_share"] > 1 / n
    assert manifest["steps_done"] == entry["steps"]


@pytest.mark.parametrize("name", ["8gaussians", "moons"])
def test_the_shipped_conditional_samples_land_in_the_asked_class(name, one_thread):
    field, _, _ = load(pretrained_path(name, "fm", conditional=True))
    shares = class_shares(field, make_dataset(name), n_per_class=300, steps=25)
    assert min(shares) >= 0.95, shares


def test_conditional_pretrained_is_read_once_and_none_where_none_ship():
    cache: dict = {}
    net, arch = conditional_pretrained("moons", "fm", cache)
    assert arch.n_classes == 2 and net.n_classes == 2
    assert conditional_pretrained("moons", "fm", cache)[0] is net  # cached
    assert conditional_pretrained("moons", "vp", cache) is None  # no -cond VP weights ship
    assert conditional_pretrained("points", "fm", cache) is None
    assert conditional_pretrained("moons", "trig", cache) is None


def test_cli_train_conditional_writes_a_conditional_file(tmp_path, capsys):
    out = tmp_path / "cond weights"
    argv = ["train", "--process", "fm", "--dataset", "swissroll", "--steps", "20", "--batch",
            "64", "--conditional", "--label-dropout", "0.3", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "conditional (4 classes)" in capsys.readouterr().err
    field, arch, manifest = load(out)
    assert arch.n_classes == 4 and field.n_classes == 4
    assert manifest["config"]["conditional"] is True
    assert manifest["config"]["label_dropout"] == 0.3
    x = torch.randn(10, 2)
    assert field.with_label(3)(x, 0.5)["velocity"].shape == (10, 2)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--label-dropout", "0.3"], "--label-dropout needs --conditional"),
        (["--conditional", "--label-dropout", "1"], "label-dropout must be in [0, 1)"),
    ],
)
def test_cli_train_refuses_bad_label_dropout_in_one_line(tmp_path, capsys, extra, match):
    out = tmp_path / "w"
    argv = ["train", "--dataset", "moons", "--steps", "5", *extra, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and not out.exists()


def test_the_train_panel_trains_a_conditional_network():
    state = FlowState(particles=200, steps=20, dataset="moons")
    job = TrainingJob(state, steps=30, batch=64)
    assert job.config().conditional is False
    job.conditional = True
    assert job.config().conditional is True
    assert job.start()
    assert "class-conditional network (2 classes)" in job.status
    job.join(timeout=60)
    model = state.trained
    assert model is not None and model.steps == 30
    assert model.n_classes == model.arch.n_classes == model.net.n_classes == 2
    # as "learned (trained here)", without a class: the null token, the unconditional field
    state.field = "trained"
    state.recompute()
    assert json.loads(state.result.meta)["field"] == "trained"


def test_the_train_panel_has_a_class_conditional_checkbox():
    panel = TrainPanel(state=FlowState())
    boxes = {w.name: w for w in panel.__panel__().select(pn.widgets.Checkbox)}
    boxes["class-conditional"].value = True
    assert panel.job.conditional and panel.job.config().conditional
