"""Draw docs/images/alzheimer_phantom.png: phantom slices and what the demo model makes of them.

    python scripts/alzheimer_docs_figure.py

Top row: axial slice 105 of four phantom subjects the demo model was not trained on (seed
777), two controls and two with disease, sorted by atrophy. Bottom row, for the most atrophied
one: the autoencoder's reconstruction, its |error|, the occlusion-sensitivity map in logits (red:
regions that raise the probability of AD) and the most varied first-layer feature map.
"""

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "alzheimer_phantom.png"


def main():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from torchscope import alzheimer as az

    torch.set_num_threads(1)
    cohort = az.phantom_cohort(8, seed=777)
    model = az.load_model(az.demo_model_path(), device="cpu")
    p = az.predict(model, cohort.slices)
    order = np.argsort(cohort.clinical["atrophy"])
    picks = [order[0], order[2], order[-3], order[-1]]
    fig, axes = plt.subplots(2, 4, figsize=(13, 7.4))

    def show(ax, image, title, **kw):
        ax.imshow(np.rot90(image), **kw)
        ax.set_title(title, fontsize=9)
        ax.axis("off")

    for ax, i in zip(axes[0], picks):
        group = "AD" if cohort.labels[i] else "control"
        show(ax, cohort.slices[i], f"{cohort.ids[i]}: {group}, CDR {cohort.cdr[i]:g}, "
             f"age {cohort.age[i]:.0f}\natrophy {cohort.clinical['atrophy'][i]:.2f}, "
             f"demo p(AD) = {p[i]:.2f}", cmap="gray", vmin=0, vmax=1)
    s = cohort.slices[picks[-1]]
    recon = az.reconstruct(model, s)
    psnr = 10 * np.log10(1 / np.mean((recon - s) ** 2))
    show(axes[1, 0], recon, f"autoencoder output ({psnr:.1f} dB)", cmap="gray", vmin=0, vmax=1)
    show(axes[1, 1], np.abs(recon - s), "|error| (0 to 0.2)", cmap="magma", vmin=0, vmax=0.2)
    heat = az.occlusion_map(model, s, patch=16, stride=8, units="logit")
    lim = max(float(np.abs(heat).max()), 1e-6)
    show(axes[1, 2], s, "", cmap="gray", vmin=0, vmax=1)
    axes[1, 2].imshow(np.rot90(heat), cmap="bwr", vmin=-lim, vmax=lim, alpha=0.5)
    axes[1, 2].set_title(f"occlusion sensitivity, logit (+-{lim:.2g})", fontsize=9)
    maps = az.feature_maps(model, s, layers=["conv1"])["conv1"]
    k = int(np.argmax(maps.reshape(len(maps), -1).std(1)))
    show(axes[1, 3], maps[k], f"feature map conv1[{k}]", cmap="viridis")
    fig.suptitle("torchscope.alzheimer: phantom slices (synthetic; not patients) and the "
                 "phantom-trained demo model", fontsize=11)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
