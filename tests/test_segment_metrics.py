"""Dice / IoU against hand-computed cases, including empty masks and the ignore value."""

import math

import numpy as np
import pytest

from sim2real.segment.metrics import confusion_counts, dice, dice_iou, summarise


def test_hand_computed_counts_dice_and_iou():
    pred = np.array([[1, 1, 0],
                     [0, 2, 2]])
    truth = np.array([[1, 0, 0],
                      [255, 2, 1]])  # (1, 0) is ignored whatever the prediction says
    counts = confusion_counts(pred, truth, num_classes=3)
    # class 1: TP (0,0); FP (0,1); FN (1,2)   class 2: TP (1,1); FP (1,2)
    assert counts[1].tolist() == [1, 1, 1]
    assert counts[2].tolist() == [1, 1, 0]
    d, iou = dice_iou(counts)
    assert d[1] == pytest.approx(2 / 4) and iou[1] == pytest.approx(1 / 3)
    assert d[2] == pytest.approx(2 / 3) and iou[2] == pytest.approx(1 / 2)


def test_ignore_pixels_do_not_count_even_when_predicted():
    truth = np.array([[255, 255], [1, 0]])
    pred = np.array([[1, 1], [1, 0]])
    assert dice(pred, truth, 2)[1] == 1.0


def test_empty_in_both_is_one_by_default_and_nan_on_request():
    truth = np.zeros((4, 4), np.uint8)
    pred = np.zeros((4, 4), np.uint8)
    d, iou = dice_iou(confusion_counts(pred, truth, 3))
    assert d[1] == 1.0 and iou[2] == 1.0
    d, _ = dice_iou(confusion_counts(pred, truth, 3), empty=None)
    assert math.isnan(d[1])


def test_empty_truth_with_prediction_scores_zero_and_vice_versa():
    truth = np.zeros((2, 2), np.uint8)
    pred = np.array([[0, 1], [0, 0]])
    assert dice(pred, truth, 2)[1] == 0.0
    assert dice(truth, pred, 2)[1] == 0.0


def test_all_ignored_counts_as_empty():
    truth = np.full((3, 3), 255, np.uint8)
    pred = np.ones((3, 3), np.uint8)
    assert dice(pred, truth, 2)[1] == 1.0


def test_shape_mismatch_and_bad_truth_ids_are_errors():
    with pytest.raises(ValueError, match="prediction is"):
        confusion_counts(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="outside"):
        confusion_counts(np.zeros((2, 2)), np.full((2, 2), 7), 2)


def test_summarise_pools_pixels_and_averages_images():
    # image 1: perfect 1-pixel object; image 2: object of 3 pixels missed entirely
    c1 = confusion_counts(np.array([1, 0, 0, 0]), np.array([1, 0, 0, 0]), 2)
    c2 = confusion_counts(np.array([0, 0, 0, 0]), np.array([1, 1, 1, 0]), 2)
    s = summarise(np.stack([c1, c2]), ["obj"])["obj"]
    assert s["dice"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 3))  # pooled: TP 1, FN 3
    assert s["dice_mean_image"] == pytest.approx(0.5)
    assert s["images_present"] == 2
