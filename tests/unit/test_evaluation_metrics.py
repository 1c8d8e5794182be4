"""ai.metrics against small cases worked by hand: bootstrap intervals, the threshold rules,
temperature scaling, expected calibration error, voxel- and component-wise precision/recall/F1."""
from __future__ import annotations

import numpy as np
import pytest

from medviewer.ai.metrics import (binary_metrics_ci, bootstrap_ci, component_prf, fit_temperature, reliability,
                                  roc_auc, sensitivity_threshold, softmax, voxel_prf, youden_threshold)


def test_roc_auc_by_hand_with_ties():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4) (0.8>0.1) (0.4=0.4: half) (0.4>0.1) -> 3.5/4
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_bootstrap_interval_of_a_constant_and_of_a_mean():
    assert bootstrap_ci(np.mean, np.full(10, 0.7)) == pytest.approx((0.7, 0.7))
    x = np.random.default_rng(1).normal(0.0, 1.0, 400)
    lo, hi = bootstrap_ci(np.mean, x, n_boot=2000, seed=0)
    half = 1.96 / np.sqrt(400)  # the normal-theory half width of a mean of 400 unit-variance values
    assert lo < x.mean() < hi and (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(np.mean, x, seed=0) == (lo, hi)  # seeded: repeatable


def test_stratified_bootstrap_keeps_both_classes_in_every_resample():
    y = np.array([1] + [0] * 30)  # one positive: unstratified resamples would often have none
    p = np.linspace(0, 1, 31)
    out = binary_metrics_ci(y, p, threshold=0.5, n_boot=300)
    assert out["roc_auc"]["ci95"][0] <= out["roc_auc"]["value"] <= out["roc_auc"]["ci95"][1]
    assert out["n"] == 31 and out["n_positive"] == 1


def test_youden_threshold_by_hand():
    # scores: neg 0.1, 0.3, 0.35; pos 0.6, 0.4, 0.9. Cut between 0.35 and 0.4 -> sens 1, spec 1 (J = 1)
    y = [0, 0, 0, 1, 1, 1]
    p = [0.1, 0.3, 0.35, 0.6, 0.4, 0.9]
    assert youden_threshold(y, p) == pytest.approx(0.375)
    # an overlap: neg 0.2, 0.7; pos 0.5, 0.8. Cuts: 0.35 -> J = 1 + 0.5 - 1 = 0.5; 0.75 -> 0.5 + 1 - 1 = 0.5;
    # 0.6 -> 0.5 + 0.5 - 1 = 0: the tie goes to the cut nearest 0.5 (0.35 is 0.15 away, 0.75 is 0.25)
    assert youden_threshold([0, 0, 1, 1], [0.2, 0.7, 0.5, 0.8]) == pytest.approx(0.35)


def test_sensitivity_threshold_catches_the_target_fraction():
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.1, 1.0, 10), np.linspace(0.0, 0.5, 10)])
    t = sensitivity_threshold(y, p, 0.9)  # 9 of the 10 positives: the 9th highest positive score
    assert t == pytest.approx(0.2)
    assert (p[y == 1] >= t).mean() >= 0.9


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (4000, 1)) * np.array([[1.0, -1.0]])  # logits of two classes
    true_t = 2.5
    p1 = softmax(z, true_t)[:, 1]
    labels = (rng.random(4000) < p1).astype(int)  # labels drawn from softmax(z / 2.5)
    assert fit_temperature(z, labels) == pytest.approx(true_t, rel=0.1)


def test_reliability_and_ece_by_hand():
    # bin [0, 0.5): p 0.2, 0.2 -> mean 0.2, observed 0.5; bin [0.5, 1]: p 0.9, 0.9 -> mean 0.9, observed 1.0
    r = reliability([0, 1, 1, 1], [0.2, 0.2, 0.9, 0.9], n_bins=2)
    assert r["ece"] == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    assert [b["n"] for b in r["bins"]] == [2, 2]
    assert reliability([1, 0], [1.0, 0.0], n_bins=10)["ece"] == 0.0  # p = 1 falls in the last bin


def test_voxel_and_component_precision_recall():
    truth = np.zeros((10, 10), bool)
    truth[1:3, 1:3] = True   # lesion A (4 px)
    truth[6:8, 6:8] = True   # lesion B (4 px), missed
    pred = np.zeros_like(truth)
    pred[1:3, 1:4] = True    # covers A (4 of 6 px right)
    pred[8:10, 0:2] = True   # a false lesion
    v = voxel_prf(pred, truth)
    assert (v["tp"], v["fp"], v["fn"]) == (4, 6, 4)
    assert v["precision"] == pytest.approx(0.4) and v["recall"] == pytest.approx(0.5)
    assert v["f1"] == pytest.approx(2 * 4 / (2 * 4 + 6 + 4))
    c = component_prf(pred, truth)
    assert (c["n_true"], c["n_pred"]) == (2, 2)
    assert c["recall"] == pytest.approx(0.5) and c["precision"] == pytest.approx(0.5)
