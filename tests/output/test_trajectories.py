"""trajectories.png from real 2-D runs (its pixels checked), and the DeepOBS report section."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.colors import to_rgb

import datasets
from bench.analysis.summary import Summary
from bench.analysis.tables import tables
from bench.output import deepobs, trajectories
from bench.output.doc import Doc, markdown
from bench.output.plots import color_of
from bench.run.runner import run
from bench.run.spec import RunSpec


def path_run(dataset: str, method: str, lr: float, epochs: int = 25, **hp):
    hparams = tuple(sorted({"lr": lr, **hp}.items()))
    spec = RunSpec(dataset=dataset, method=method, model="theta", task="function2d",
                   hparams=hparams, epochs=epochs, problem=dataset)  # fmt: skip
    return run(spec)


@pytest.fixture(scope="module")
def epochs():
    results = [
        path_run("rosenbrock", "gd", 1e-3, epochs=100),
        path_run("rosenbrock", "adam", 0.05),
        path_run("beale", "momentum", 1e-2, momentum=0.9),  # leaves the axes and diverges
        path_run("beale", "adam", 0.05),
    ]
    # A regression run first: its rows have no theta, the 2-D runs' columns must survive.
    regression = run(RunSpec(dataset="crops5", method="gd", hparams=(("lr", 1e-5),), epochs=2))
    return tables([regression, *results])[0]


def test_paths_keep_one_run_per_method_and_the_theta_columns(epochs):
    assert {"theta_0", "theta_1"} <= set(epochs.columns)
    assert epochs[epochs["dataset"] == "crops5"]["theta_0"].isna().all()
    p = trajectories.paths(epochs)
    assert set(zip(p["problem"], p["method"], strict=True)) == {
        ("rosenbrock", "gd"), ("rosenbrock", "adam"), ("beale", "momentum"), ("beale", "adam")
    }  # fmt: skip
    start = p[p["epoch"] == 0]
    rosen = start[start["problem"] == "rosenbrock"]
    assert set(rosen["theta_0"]) == {float(np.float32(-1.2))}


def test_clip_path_ends_where_the_path_crosses_the_edge():
    bounds = ((-1.0, 1.0), (-1.0, 1.0))
    xy = np.array([[0.0, 0.0], [0.5, 0.5], [2.0, 0.0], [0.1, 0.1]])
    kept, left = trajectories.clip_path(xy, bounds)
    assert left
    # (0.5, 0.5) -> (2, 0) crosses x = 1 a third of the way: the × goes there, on the path
    np.testing.assert_allclose(kept, [[0.0, 0.0], [0.5, 0.5], [1.0, 1 / 3]])
    far = np.array([[-0.5, -0.9], [1e6, -0.4]])  # a blow-up: still where it leaves the box
    kept, _ = trajectories.clip_path(far, bounds)
    np.testing.assert_allclose(kept[-1], [1.0, -0.9 + 0.5 * 1.5 / (1e6 + 0.5)])
    kept, left = trajectories.clip_path(xy[:2], bounds)
    assert not left
    assert len(kept) == 2
    kept, left = trajectories.clip_path(np.array([[0.0, 0.0], [np.nan, 0.0]]), bounds)
    assert left
    assert len(kept) == 1


def test_trajectories_png_draws_every_method_in_its_colour(epochs, tmp_path):
    out = trajectories.plot(epochs, tmp_path / "trajectories.png")
    assert out is not None
    img = mpimg.imread(out)[..., :3]
    h, w, _ = img.shape
    assert w > h > 300  # two panels side by side, legend below
    assert (img.min(axis=2) < 0.95).mean() > 0.03  # contours and paths, not a blank canvas
    for method in ("gd", "adam", "momentum"):
        rgb = np.array(to_rgb(color_of(method)))
        near = (np.abs(img - rgb).max(axis=2) < 0.06).sum()
        assert near > 60, method  # its path and its legend entry
    assert trajectories.plot(epochs[epochs["dataset"] == "crops5"], tmp_path / "no.png") is None
    assert not (tmp_path / "no.png").exists()


def test_deepobs_section_puts_our_numbers_next_to_deepobs_seed_spread():
    common = dict(method="minibatch", model="theta", task="quadratic_deep", batch_size=128,
                  epochs=1, holdout=896 / 1896)  # fmt: skip
    results = [
        run(RunSpec(dataset="quadratic_deep:variant=tensorflow", problem="qd_tf", seed=seed,
                    hparams=(("lr", lr),), **common))
        for seed in (0, 1)
        for lr in (0.0158, 0.01584893192461114)
    ] + [run(RunSpec(dataset="quadratic_deep", problem="qd", hparams=(("lr", 0.0158),),
                     **common))]  # fmt: skip
    epochs, runs = tables(results)
    [section] = deepobs.sections(runs, epochs, "python -m bench sweep --config x.toml")
    text = markdown(Doc("t", "", Summary([]), [section]))
    assert "    python -m bench sweep --config x.toml" in text  # the command, as code
    tf = text.split("**qd_tf**")[1].split("**qd**")[0]
    assert "| initial hold-out loss (θ0 = ones) | 353.4468 | 353.4468 |" in tf
    qp = datasets.quadratic_deep("tensorflow")
    assert f"| {qp.train_loss_star:.7g} |" in tf
    assert "DeepOBS's SGD (lr 0.01585)" in tf
    # DeepOBS's own spread over the seeds it ran at its tuned rate, not one seed-42 number
    sgd = next(b for b in datasets.DEEPOBS_BASELINES if b.optimizer == "SGD")
    assert sgd.finals[43] == pytest.approx(87.528, abs=5e-4)  # the seed-43 number
    finals = sorted(sgd.finals.values())
    assert f"[{finals[0]:.4g}, {finals[-1]:.4g}] ({len(finals)} seeds: 42, 43" in " ".join(
        tf.split()
    )
    # like for like only at DeepOBS's own learning rate; another rate is said to differ
    lines = next(b for b in section.blocks if isinstance(b, list))  # qd_tf's, one per setting
    readings = {line.split(")")[0]: line for line in lines}
    assert "Same setting: " in readings["`minibatch` (lr=0.01585"]
    assert "Not like for like" in readings["`minibatch` (lr=0.0158"]
    pytorch = text.split("**qd**")[1]
    assert "| 228.8" in pytorch
    assert "87.28" not in pytorch.split("DeepOBS's numbers")[0]
    assert "GradientDescentOptimizer" in text  # the sources
    assert "θ0 = ones in every run" in text
    assert "fresh initial weights" not in text
    assert deepobs.sections(runs[runs["dataset"] == "nothing"], epochs, "x") == []
