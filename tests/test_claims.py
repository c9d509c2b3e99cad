"""The prose's qualitative claims, checked against the committed quick-profile results.

The report quotes every number through ``[[metric:...]]``, so numbers cannot go stale; but a
sentence such as "the diffusion model is ahead of the GAN" could stop being true when a model
is retrained. Each test here pins one such sentence (or one goal of the families chapter) to
the measurements in ``figures/quick``, so that a change that breaks it fails here and the
prose is revisited.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUICK = Path(__file__).resolve().parents[1] / "figures" / "quick"


def metrics(node: str) -> dict:
    path = QUICK / node / "record.json"
    if not path.exists():
        pytest.fail(f"{path} is missing; run `genai-report figures --profile quick`.")
    return json.loads(path.read_text())["metrics"]


def test_pixel_diffusion_is_within_twice_the_real_data_floor():
    # docs/types/diffusion.md; the families chapter's goal
    floor = metrics("digits-classifier")["fid_floor"]
    assert metrics("digits-diffusion")["fid"] <= 2 * floor
    assert metrics("families-ddim-steps")["ddpm"]["fid"] <= 2 * floor


def test_the_gan_covers_at_least_nine_classes():
    # docs/types/gan.md and index.md; the families chapter's goal
    assert metrics("digits-gan")["classes_covered"] >= 9


def test_diffusion_is_ahead_of_the_gan_even_at_a_matched_budget():
    # docs/types/index.md, "GAN versus diffusion"
    tt = metrics("families-training-time")
    matched = tt["matched"]
    assert matched["gan"]["time_s"] == matched["budget_s"]  # the GAN's run is the shorter
    assert matched["diffusion"]["within_budget"]
    assert matched["diffusion"]["time_s"] <= matched["budget_s"]
    assert matched["diffusion"]["fid"] < tt["gan"]["final_fid"]
    assert matched["diffusion"]["fid"] < matched["gan"]["fid"]
    assert metrics("digits-diffusion")["fid"] < metrics("digits-gan")["fid"]


def test_few_ddim_steps_cost_quality():
    # docs/types/diffusion.md, "Fewer steps: DDIM"
    steps = metrics("families-ddim-steps")
    spread = steps["ddim50_seeds"]["std"]
    assert steps["ddim"]["5"]["fid"] > steps["ddim"]["50"]["fid"] + 2 * spread
    assert steps["ddim"]["10"]["fid"] > steps["ddim"]["50"]["fid"]
    assert steps["speedup_ddim50"] > 10


def test_latent_diffusion_does_not_beat_pixel_diffusion_at_our_scale():
    # docs/types/hybrids.md
    ld = metrics("families-latent-diffusion")
    assert ld["latent-diffusion"]["fid"] > ld["diffusion"]["fid"]


def test_guidance_trades_recall_for_fidelity():
    # docs/types/diffusion.md, "Draw a 7"
    by = metrics("families-guidance")["by_scale"]
    assert by["3"]["accuracy"] >= by["1"]["accuracy"] > by["0"]["accuracy"]
    assert by["8"]["recall"] < by["1"]["recall"]


def test_the_first_design_weights_are_the_cheapest():
    # docs/applications/demos.md, "Design under a constraint"
    m = metrics("applications-design")
    first, strongest = m["curve"][0], m["strongest"]
    mid = m["curve"][2]

    def cost(a, b):  # accuracy lost per unit of ink saved between two weights
        return (a["class_accuracy"] - b["class_accuracy"]) / (a["mean_ink"] - b["mean_ink"])

    assert mid["mean_ink"] < first["mean_ink"]
    assert cost(first, mid) < cost(mid, strongest)


def test_latent_diffusion_is_bounded_by_its_decoder_not_its_codes():
    # docs/types/hybrids.md
    ld = metrics("digits-latent-diffusion")
    table = metrics("families-latent-diffusion")
    ceiling = ld["decoded_real_codes"]["fid"]
    assert ld["fid"] < table["vae"]["fid"]  # far better than the prior's samples
    assert ld["fid"] < 1.5 * ceiling  # close to what real codes give
    assert ceiling > 5 * table["diffusion"]["fid"]  # the decoder is what holds it back
    assert ld["active_latent_dims"] < ld["latent_dims"]
    assert ld["unclamped"]["fid"] > 2 * ld["fid"]
    assert ld["unclamped"]["code_abs_max"] > 10 * ld["code_clip"]
