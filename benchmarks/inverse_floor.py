"""Can any UMAP or t-SNE layout of the reference run reach the learned inverse's target (issue 21:
median relative latent error <= 0.35 on held-out points)?

For each layout setting (umap-learn's n_neighbors and min_dist, densMAP, openTSNE's perplexity),
on the run's 10,000 test means, it prints the layout's quality (10-NN label accuracy and
trustworthiness: targets >= 0.93 and >= 0.95) and, on a 10% hold-out (as
``projection_quality.py``): the learned inverse's median relative error, the best k-NN
regression's, and the floor, the noise no function of the map position removes at the data's
density (see ``projection_quality.py``). A setting that kept the quality and brought the floor
well below 0.35 would be worth using; the table says whether one exists.

    python benchmarks/inverse_floor.py --run RUN_DIR [--quick]

``--quick`` runs three settings instead of all. Minutes (t-SNE about a minute a layout here).
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

UMAP_SETTINGS = [dict(n_neighbors=15, min_dist=0.1), dict(n_neighbors=15, min_dist=0.0),
                 dict(n_neighbors=5, min_dist=0.1), dict(n_neighbors=8, min_dist=0.02),
                 dict(n_neighbors=15, min_dist=0.5), dict(n_neighbors=15, min_dist=0.99),
                 dict(n_neighbors=15, min_dist=0.8, spread=2.0), dict(n_neighbors=50, min_dist=0.5),
                 dict(n_neighbors=15, min_dist=0.1, densmap=True)]
TSNE_PERPLEXITIES = [10.0, 30.0]
TARGET = 0.35


def layout(kind: str, setting: dict, z: np.ndarray) -> np.ndarray:
    if kind == "umap":
        import umap

        return np.asarray(umap.UMAP(random_state=0, **setting).fit_transform(z), np.float32)
    import openTSNE

    return np.asarray(openTSNE.TSNE(n_jobs=2, random_state=0, **setting).fit(z), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder of projection_quality.py")
    parser.add_argument("--quick", action="store_true", help="three settings only")
    args = parser.parse_args()
    from projection_quality import inverse_errors, knn_accuracy, trustworthiness

    from vaegui.core.run_reader import RunReader

    reader = RunReader(args.run)
    epoch = reader.map_epochs()[-1]
    z = reader.map_means(epoch)
    labels = reader.map_labels(len(z))
    settings = [("umap", s) for s in UMAP_SETTINGS] + [("tsne", {"perplexity": p}) for p in TSNE_PERPLEXITIES]
    if args.quick:
        settings = [settings[0], settings[2], settings[-1]]
    rows = []
    for kind, setting in settings:
        t = time.perf_counter()
        xy = layout(kind, setting, z)
        seconds = time.perf_counter() - t
        inverse = inverse_errors(xy, z)
        row = {"projection": kind, **setting, "fit_s": round(seconds, 1),
               "knn_accuracy": round(knn_accuracy(xy, labels), 4),
               "trustworthiness": round(trustworthiness(z, xy), 4),
               "inverse_median_rel_error": round(inverse["inverse_median_rel_error"], 3),
               "best_knn_regression_rel_error": round(inverse["best_knn_regression_rel_error"], 3),
               "floor_rel_error": round(inverse["inverse_floor_rel_error"], 3)}
        row["quality_met"] = row["knn_accuracy"] >= 0.93 and row["trustworthiness"] >= 0.95
        rows.append(row)
        print(json.dumps(row), flush=True)
    kept = [r for r in rows if r["quality_met"]]
    best = min(kept, key=lambda r: r["inverse_median_rel_error"]) if kept else None
    summary = {"run": str(args.run), "epoch": epoch, "points": len(z), "target": TARGET,
               "lowest_floor_with_quality": min((r["floor_rel_error"] for r in kept), default=None),
               "best_with_quality": best,
               "target_met": bool(best and best["inverse_median_rel_error"] <= TARGET)}
    print(f"best inverse among layouts that keep the quality: {best and best['inverse_median_rel_error']} "
          f"(target {TARGET}; lowest floor {summary['lowest_floor_with_quality']})")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
