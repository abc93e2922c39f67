"""Chart builders on plain frames: which columns become which lines."""

from __future__ import annotations

import pandas as pd

from dashboard import charts


def vae_history() -> pd.DataFrame:
    """Two epochs of a VAE run as the store returns them: loss terms and the PSNR in ``extra_*``."""
    return pd.DataFrame({
        "epoch": [1, 2], "train_loss": [3.0, 2.0], "val_loss": [2.5, 1.8], "train_acc": [0.4, 0.6],
        "val_acc": [0.5, 0.6], "val_f1": [0.45, 0.58],
        "extra_train_class": [1.5, 1.0], "extra_train_recon": [1.4, 0.9], "extra_train_kl": [0.1, 0.1],
        "extra_val_class": [1.2, 0.9], "extra_val_recon": [1.2, 0.8], "extra_val_kl": [0.1, 0.1],
        "extra_quality_val_recon_psnr": [14.0, 19.5],
    })  # fmt: skip


def test_loss_components_leave_out_the_models_quality_figures():
    data = charts.loss_components(vae_history())
    assert set(data["component"]) == {"class", "recon", "kl"}
    assert set(data["split"]) == {"train", "validation"}
    assert len(data) == 2 * 6  # two epochs x three terms x two splits; no PSNR among them


def test_the_psnr_gets_its_own_panel_only_when_the_run_has_one():
    titles = [chart.title for chart in charts.curve_panels(vae_history())]
    assert "Reconstruction PSNR (dB)" in titles
    psnr = charts.curve_panels(vae_history())[titles.index("Reconstruction PSNR (dB)")]
    assert list(psnr.data["value"]) == [14.0, 19.5] and set(psnr.data["split"]) == {"validation"}
    plain = vae_history().drop(columns=[c for c in vae_history() if c.startswith("extra_")])
    assert "Reconstruction PSNR (dB)" not in [chart.title for chart in charts.curve_panels(plain)]
