"""Synthetic FER datasets with ground truth: AU-driven procedural faces, planted label noise,
simulated annotators, and writers for every dataset layout the readers understand."""

from __future__ import annotations

from fercleaner.synth.dataset import read_truth, truth_path, write_synthetic_dataset
from fercleaner.synth.faces import OCCLUDERS, generate_faces, render_aus
from fercleaner.synth.labels import (
    NOISE_KINDS,
    inject_label_noise,
    simulate_votes,
)
from fercleaner.synth.layouts import LAYOUT_CLASSES, LAYOUT_SPLITS

__all__ = [
    "LAYOUT_CLASSES",
    "LAYOUT_SPLITS",
    "NOISE_KINDS",
    "OCCLUDERS",
    "generate_faces",
    "inject_label_noise",
    "read_truth",
    "render_aus",
    "simulate_votes",
    "truth_path",
    "write_synthetic_dataset",
]
