"""The widgets' sources draw what ``workbench.maps.predict`` computes: no forward passes of their own."""

import inspect

import numpy as np
import pytest
import torch

import widgets.sources
from widgets.sources import LineSource, PlaneSource
from workbench import Experiment, Run
from workbench.data.registry import make_dataset
from workbench.maps import predict
from workbench.models import build_model
from workbench.train import History


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _run(dataset: str) -> Run:
    exp = Experiment(dataset=dataset, relaxation="fixed-inputs", width=8, depth=2, n_fixed=4)
    box = make_dataset(dataset).box
    torch.manual_seed(0)
    return Run(exp, build_model(exp, len(box), 1, box), History(), {}, box, len(box), 1)


def test_line_source_hands_on_predict():
    src = LineSource(_run("gibbs-1d"))
    curves = src.predict([(0.5, 0.0, 1.0)])
    ds = predict(src.run, (np.r_[src.base_x, 0.5], np.r_[src.base_y, 1.0]), src.x)
    assert set(curves) == {"mean", "std", "mean_strict", "breaking", "oracle_mean", "oracle_std"}
    for k, v in curves.items():
        assert np.array_equal(v, ds[k].values), k


def test_plane_source_hands_on_predict():
    src = PlaneSource(_run("gp-2d"), n=12)
    snap = src.predict()
    ds = predict(src.run, (np.c_[src.base.lon, src.base.lat], src.base.value), (src.x, src.y))
    assert snap.fields["mean"].shape == (12, 12) and snap.fixed_inputs.shape == (4, 12, 12)
    for k in ("mean", "std", "mean_strict", "breaking", "oracle_mean"):
        assert np.array_equal(snap.fields[k], ds[k].values), k
    assert np.array_equal(snap.fixed_inputs, ds["fixed_inputs"].values)


def test_sources_compute_no_prediction_themselves():
    code = inspect.getsource(widgets.sources)
    for own in ("fixed_inputs=False", ".predict(task", "oracle_moments", "fixed_input_values"):
        assert own not in code, own
