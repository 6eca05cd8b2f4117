"""Imbalanced semantic segmentation: mosaics of real tiles, long-tailed classes.

The task (`kimbalance.data.mosaics.segmentation_mosaics`): each image is a
2x2 mosaic of real Fashion-MNIST tiles (the embedded 8x8 digits in smoke
mode) or blank slots, with Gaussian noise; each tile pixel brighter than a
threshold is labelled with its tile's class + 1, everything else is
background (class 0, most pixels). Training tiles are long-tailed (class c
drawn with probability proportional to ratio**(-c/(C-1)), class 0 the head),
so foreground classes are long-tailed in pixels and in the images holding
them. Validation mosaics (from training images held out of the tile pool)
and test mosaics (from the test images) draw tile classes uniformly, so
every class has pixels to score.

Methods (one small U-Net, `kimbalance.models.small_unet`, logits out):
ce (cross-entropy), weighted_ce (CE with per-pixel class-weight maps,
`--pixel-weights` scheme over training pixel counts), focal (focal CE,
gamma 2), dice (soft Dice, MONAI's definition, per image, background
included), dice_batch (the same Dice ratio over the whole batch, MONAI's
`batch=True`), dice_ce (Dice + CE), tversky (alpha 0.3, beta 0.7, Salehi et
al.), focal_tversky (alpha 0.3, beta 0.7, gamma 0.75, Abraham & Khan), and
repeat_factor (CE on images re-sampled each epoch by LVIS repeat-factor
sampling over the classes they contain, `--rf-threshold`).

Scores on the test mosaics, from the pixel confusion matrix: IoU per class,
mean IoU over the foreground classes (`miou`), balanced pixel accuracy (mean
recall over all classes, background included), tail IoU (mean IoU over the
rarest third of the foreground classes in training pixels), background IoU,
and the validation mean IoU. No method tunes anything: every
hyperparameter is the literature default, and the validation mosaics are
scored so that a tuned variant could be chosen on them, never on the test
set. Mean ± std over seeds; the seed draws the mosaics, the initial weights
and the sampling.

Each finished (method, seed) run is appended as one JSON line to `--runs`
(default `<out>/segmentation_runs.jsonl`); `--resume` skips the runs already
there with the same settings, so a long run can be restarted. `--plot`
writes a PNG with test images holding tail classes: input, truth and each
method's prediction (first seed).

The defaults are sized for a loaded 2-core CPU (benchmarks/results/
segmentation.md: 8 methods x 3 seeds in about half an hour on torch): 7x7
tiles, 14x14 mosaics, a one-level U-Net, 960 training mosaics, 2 epochs.
That is a small experiment; on a real machine use e.g. `--downscale 1
--depth 2 --base-filters 16 --train-size 4000 --epochs 15` (56x56 mosaics).

Examples:
    python recipes/segmentation.py --smoke --quiet   # digits, under a minute
    python recipes/segmentation.py --seeds 3 --backend torch --threads 1 \\
        --resume --quiet
"""

import base64
import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from recipes._backend import select_backend  # noqa: E402  (imports no keras)

select_backend(sys.argv[1:])

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kimbalance import data as kb_data  # noqa: E402
from kimbalance import experiments as ex  # noqa: E402
from kimbalance import losses, models, weights  # noqa: E402  (SCHEMES)
from kimbalance.data.mosaics import segmentation_mosaics  # noqa: E402
from kimbalance.experiments.runner import set_random_seed  # noqa: E402

METHODS = {
    "ce": "cross-entropy",
    "weighted_ce": "CE with per-pixel class-weight maps",
    "focal": "focal CE (gamma 2)",
    "dice": "soft Dice (MONAI DiceLoss, softmax, background included)",
    "dice_ce": "Dice + CE (MONAI DiceCELoss)",
    "tversky": "Tversky (alpha 0.3, beta 0.7)",
    "focal_tversky": "focal Tversky (alpha 0.3, beta 0.7, gamma 0.75)",
    "repeat_factor": "CE + LVIS repeat-factor image sampling",
    # Added after per-image Dice collapsed to all-background on every seed
    # (benchmarks/results/segmentation.md): one ratio over the whole batch.
    "dice_batch": "soft Dice over the whole batch (MONAI batch=True)",
}
COLUMNS = ["method", "seeds", "miou", "tail_iou", "balanced_pixel_accuracy",
           "background_iou", "val_miou", "train_time"]
HEADERS = {"miou": "mIoU (fg)", "tail_iou": "tail IoU",
           "balanced_pixel_accuracy": "bal. pixel acc",
           "background_iou": "bg IoU", "val_miou": "val mIoU"}
RATES = ["miou", "tail_iou", "balanced_pixel_accuracy", "background_iou",
         "val_miou"]
# Smoke mode: digits tiles (16x16 mosaics), tiny sets, one epoch.
SMOKE_SIZES = (96, 32, 32)
SMOKE_BATCH = 32
SMOKE_RATIO = 10.0  # 96 mosaics: every tile class keeps some pixels
PLOT_IMAGES = 4


def build_parser():
    parser = ex.make_parser(__doc__, epochs=2, recipe="segmentation",
                            batch_size=32, dataset="fashion_mnist")
    parser.add_argument("--train-size", type=int, default=960,
                        help="training mosaics (default: 960)")
    parser.add_argument("--val-size", type=int, default=100,
                        help="validation mosaics (default: 100)")
    parser.add_argument("--test-size", type=int, default=300,
                        help="test mosaics (default: 300)")
    parser.add_argument("--grid", type=int, default=2, help="tiles per side")
    parser.add_argument("--downscale", type=int, default=4,
                        help="tiles are shrunk by this integer factor (block "
                             "mean; default 4: 28x28 Fashion-MNIST tiles become "
                             "7x7, mosaics 14x14; 1 in smoke mode)")
    parser.add_argument("--ratio", type=float, default=100.0,
                        help="head / tail tile-class ratio (default: 100)")
    parser.add_argument("--background-prob", type=float, default=0.25,
                        help="probability that a slot is blank (default: 0.25)")
    parser.add_argument("--threshold", type=float, default=0.3,
                        help="tile intensity above which a pixel is foreground")
    parser.add_argument("--noise", type=float, default=0.1,
                        help="std of the Gaussian noise on the images")
    parser.add_argument("--base-filters", type=int, default=8,
                        help="U-Net filters at full resolution (default: 8)")
    parser.add_argument("--depth", type=int, default=1,
                        help="U-Net depth (poolings; default: 1)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="batch normalisation in the U-Net (default: off)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--pixel-weights", choices=weights.SCHEMES,
                        default="sqrt_inverse",
                        help="class-weight scheme of weighted_ce over the "
                             "training pixel counts (default: sqrt_inverse)")
    parser.add_argument("--rf-threshold", type=float, default=0.3,
                        help="repeat-factor threshold t: classes in fewer than "
                             "a fraction t of the images are repeated "
                             "(default: 0.3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch backend: torch.set_num_threads(N); on a "
                             "loaded machine 1 avoids thread oversubscription "
                             "(measured: 0.5 s per step with 1 thread, 30 s with "
                             "2, at a load average of 16 on 2 cores)")
    parser.add_argument("--runs", default=None,
                        help="JSON-lines file of finished runs (default: "
                             "<out>/segmentation_runs.jsonl)")
    parser.add_argument("--resume", action="store_true",
                        help="skip the (method, seed) runs already in --runs "
                             "with the same settings")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: build the table and the figure from "
                             "the runs already in --runs (missing runs are "
                             "listed and left out)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="prediction figure (default: <out>/segmentation.png)")
    ex.parse_methods(parser, METHODS)
    return parser


# --- data ------------------------------------------------------------------------


def make_split(args, seed):
    """Train / validation / test mosaics; the tile pools never share an image."""
    name = args.dataset
    dataset = _load(name, args.data_dir)
    y_all = np.asarray(dataset.y_train).reshape(-1)
    num_classes = len(dataset.class_names)
    train_idx, val_idx = kb_data.stratified_split(y_all, test_size=0.1, seed=seed)
    x_all, x_test = (_shrink(dataset.x_train, args.downscale),
                     _shrink(dataset.x_test, args.downscale))
    sizes = SMOKE_SIZES if args.smoke else (args.train_size, args.val_size,
                                            args.test_size)
    common = dict(grid=args.grid, threshold=args.threshold, noise=args.noise,
                  num_classes=num_classes)
    x_train, y_train = segmentation_mosaics(
        x_all[train_idx], y_all[train_idx], num_images=sizes[0],
        ratio=args.ratio, background_prob=args.background_prob, seed=seed,
        **common)
    x_val, y_val = segmentation_mosaics(
        x_all[val_idx], y_all[val_idx], num_images=sizes[1],
        background_prob=args.background_prob, seed=seed + 1000, **common)
    x_test, y_test = segmentation_mosaics(
        x_test, dataset.y_test, num_images=sizes[2],
        background_prob=args.background_prob, seed=seed + 2000, **common)
    names = ["background", *[str(n) for n in dataset.class_names]]
    return {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val,
            "x_test": x_test, "y_test": y_test, "class_names": names,
            "dataset": name}


@functools.lru_cache(maxsize=2)
def _load(name, data_dir):
    return kb_data.load_dataset(name, data_dir=data_dir)


def _shrink(images, factor):
    """uint8 images (N, h, w, c) block-averaged by `factor` (cropped to fit)."""
    if factor == 1:
        return images
    n, h, w, c = images.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = images[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor, c)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def tail_classes(train_pixels):
    """The rarest third (at least one) of the foreground classes, by pixels."""
    foreground = np.arange(1, len(train_pixels))
    k = max(1, len(foreground) // 3)
    order = foreground[np.argsort(train_pixels[1:], kind="stable")]
    return np.sort(order[:k])


# --- scores ----------------------------------------------------------------------


def confusion(y_true, y_pred, num_classes):
    """The (C, C) pixel confusion matrix, rows = truth."""
    flat = y_true.reshape(-1).astype(np.int64) * num_classes + y_pred.reshape(-1)
    return np.bincount(flat, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def scores(matrix, tail):
    """IoU per class, foreground mIoU, balanced pixel accuracy, tail IoU.

    A class absent from both truth and prediction has no IoU (NaN), left out
    of the means (as MONAI and torchmetrics do).
    """
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    truth, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    union = truth + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        recall = np.where(truth > 0, tp / truth, np.nan)
    return {"miou": float(np.nanmean(iou[1:])),
            "tail_iou": float(np.nanmean(iou[tail])),
            "balanced_pixel_accuracy": float(np.nanmean(recall)),
            "background_iou": float(iou[0]),
            "pixel_accuracy": float(tp.sum() / matrix.sum())}, iou


def predict_masks(model, x, batch_size):
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return np.argmax(np.asarray(logits), axis=-1).astype(np.int32)


# --- methods ---------------------------------------------------------------------


def make_loss(method):
    if method in ("ce", "weighted_ce", "repeat_factor"):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if method == "focal":
        return losses.FocalCrossentropy(gamma=2.0, from_logits=True)
    if method == "dice":
        return losses.DiceLoss(from_logits=True)
    if method == "dice_batch":
        return losses.DiceLoss(from_logits=True, batch=True)
    if method == "dice_ce":
        return losses.DiceCrossentropy(from_logits=True)
    if method == "tversky":
        return losses.TverskyLoss(alpha=0.3, beta=0.7, from_logits=True)
    if method == "focal_tversky":
        return losses.FocalTverskyLoss(alpha=0.3, beta=0.7, gamma=0.75,
                                       from_logits=True)
    raise ValueError(f"unknown method {method!r}")


def make_model(split, args, seed):
    """`small_unet`, logits out. Batch normalisation is off by default: its
    moving averages (momentum 0.99) do not settle in the few hundred steps a
    run here takes, so inference-mode predictions would be off."""
    set_random_seed(seed)
    return models.small_unet(split["x_train"].shape[1:], len(split["class_names"]),
                             base_filters=args.base_filters, depth=args.depth,
                             batch_norm=args.batch_norm, seed=seed)


def train(method, split, args, seed):
    """Fits one method; returns (model, train seconds, images per epoch).

    Every method reads its batches from `kimbalance.data.BalancedBatchGenerator`
    on the masks: `"instance"` sampling (a shuffle) for the losses,
    `"repeat_factor"` sampling for repeat_factor, and per-pixel class-weight
    maps (`class_weight=--pixel-weights`) for weighted_ce.
    """
    model = make_model(split, args, seed)
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss=make_loss(method),
                  run_eagerly=args.run_eagerly)
    generator = kb_data.BalancedBatchGenerator(
        split["x_train"], split["y_train"],
        sampler="repeat_factor" if method == "repeat_factor" else "instance",
        sampler_kwargs=({"threshold": args.rf_threshold}
                        if method == "repeat_factor" else None),
        class_weight=args.pixel_weights if method == "weighted_ce" else None,
        num_classes=len(split["class_names"]), batch_size=args.batch_size,
        seed=seed, drop_remainder=args.drop_remainder)
    start = time.perf_counter()
    model.fit(generator, epochs=args.epochs, verbose=0 if args.quiet else 1)
    seconds = time.perf_counter() - start
    return model, seconds, len(generator.sampler)


# --- runs file -------------------------------------------------------------------


SETTINGS = ("dataset", "smoke", "epochs", "batch_size", "train_size", "val_size",
            "test_size", "grid", "downscale", "ratio", "background_prob",
            "threshold", "noise", "base_filters", "depth", "batch_norm", "lr",
            "pixel_weights", "rf_threshold")


def settings(args):
    values = {key: getattr(args, key) for key in SETTINGS}
    values["backend"] = keras.backend.backend()
    return values


def read_runs(path, config):
    """The runs in `path` recorded with `config` ({(method, seed): record})."""
    runs = {}
    if not os.path.exists(path):
        return runs
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            if record.get("settings") == config:
                runs[(record["method"], record["seed"])] = record
    return runs


def _encode(masks):
    return base64.b64encode(np.ascontiguousarray(masks, np.uint8).tobytes()).decode()


def _decode(text, shape):
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(shape)


def plot_images(split, tail, count=PLOT_IMAGES):
    """Test images with the most tail-class pixels."""
    tail_pixels = np.isin(split["y_test"], tail).sum(axis=(1, 2))
    return np.sort(np.argsort(-tail_pixels, kind="stable")[:count])


def plot_predictions(split, picks, predictions, path):
    """Input, truth and each method's prediction for the `picks` test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = split["class_names"]
    palette = [(0, 0, 0), *plt.get_cmap("tab10").colors,
               *plt.get_cmap("Set3").colors][:len(names)]
    cmap = ListedColormap(palette)
    columns = ["input", "truth", *predictions]
    fig, axes = plt.subplots(len(picks), len(columns),
                             figsize=(1.6 * len(columns), 1.7 * len(picks) + 0.8),
                             squeeze=False)
    for row, i in enumerate(picks):
        for col, title in enumerate(columns):
            ax = axes[row, col]
            if title == "input":
                ax.imshow(split["x_test"][i, ..., 0], cmap="gray", vmin=0, vmax=1)
            else:
                mask = (split["y_test"][i] if title == "truth"
                        else predictions[title][row])
                ax.imshow(mask, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c]) for c in range(len(names))]
    fig.legend(handles, names, loc="lower center", ncol=min(6, len(names)),
               fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ------------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    ex.smoke_settings(args)
    if args.smoke:
        args.batch_size = min(args.batch_size, SMOKE_BATCH)
        args.base_filters = min(args.base_filters, 4)
        args.ratio = min(args.ratio, SMOKE_RATIO)
        args.downscale = 1
        args.dataset = "digits"
    for name in ("train_size", "val_size", "test_size", "grid", "base_filters",
                 "depth", "downscale"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1")
    if args.threads is not None and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(max(1, args.threads))
    out = ex.ensure_out(args)
    runs_path = args.runs or str(out / "segmentation_runs.jsonl")
    plot_path = args.plot or str(out / "segmentation.png")
    config = settings(args)
    reuse = args.resume or args.report_only
    if not reuse and os.path.exists(runs_path) and args.runs is None:
        os.remove(runs_path)  # a fresh run replaces the default runs file
    methods = args.methods or list(METHODS)
    seeds = ex.seeds_from_args(args)
    records, predictions = [], {}
    for seed in seeds:
        split = make_split(args, seed)
        num_classes = len(split["class_names"])
        train_pixels = np.bincount(split["y_train"].ravel(), minlength=num_classes)
        tail = tail_classes(train_pixels)
        picks = plot_images(split, tail)
        if seed == seeds[0]:
            first_split, first_picks = split, picks
            images_with = (np.stack([np.any(split["y_train"] == c, axis=(1, 2))
                                     for c in range(num_classes)], 1).sum(0))
            print(f"train: {len(split['y_train'])} mosaics "
                  f"{split['x_train'].shape[1:3]} from {split['dataset']}; pixels "
                  f"per class {train_pixels.tolist()}; images holding each class "
                  f"{images_with.tolist()}; tail classes {tail.tolist()}")
        for method in methods:
            # re-read before each run: several processes (one per seed) may
            # share the runs file
            done = read_runs(runs_path, config) if reuse else {}
            if (method, seed) in done:
                record = done[(method, seed)]
                print(f"{method} seed {seed}: resumed from {runs_path}")
            elif args.report_only:
                print(f"{method} seed {seed}: missing from {runs_path}, left out")
                continue
            else:
                record = run_one(method, split, args, seed, train_pixels, tail,
                                 picks, config)
                with open(runs_path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
            records.append(record)
            if seed == seeds[0] and "plot_masks" in record:
                predictions[method] = _decode(record["plot_masks"],
                                              (len(picks), *split["y_test"].shape[1:]))
    if not records:
        raise SystemExit(f"no runs with these settings in {runs_path}")
    results = [ex.RunResult(r["method"], r["seed"], r["metrics"]) for r in records]
    rows = ex.summarize(results)
    table = ex.markdown_table(rows, COLUMNS, headers=HEADERS, rates=RATES)
    class_rows = per_class_rows(records, first_split["class_names"], methods)
    class_table = ex.markdown_table(
        class_rows, ["class", "train_pixels", *methods],
        headers={"train_pixels": "train pixels"}, rates=methods)
    print(table)
    print("test IoU per class (mean over seeds):")
    print(class_table)
    plot_predictions(first_split, first_picks, predictions, plot_path)
    meta = {"command": "python recipes/segmentation.py " + " ".join(argv),
            "settings": config, "tail_classes": tail.tolist(),
            "seeds": seeds, **ex.backend_info()}
    ex.write_results(out, "segmentation", table=table + "\n\n" + class_table,
                     rows=rows, meta=meta, runs=results,
                     extra={"per_class": class_rows})
    print(f"wrote {out}/segmentation.md, segmentation.json, {runs_path} and "
          f"{plot_path}")
    return rows


def run_one(method, split, args, seed, train_pixels, tail, picks, config):
    model, seconds, seen = train(method, split, args, seed)
    num_classes = len(split["class_names"])
    test_pred = predict_masks(model, split["x_test"], args.batch_size)
    val_pred = predict_masks(model, split["x_val"], args.batch_size)
    metrics, iou = scores(confusion(split["y_test"], test_pred, num_classes), tail)
    val_metrics, _ = scores(confusion(split["y_val"], val_pred, num_classes), tail)
    metrics["val_miou"] = val_metrics["miou"]
    metrics["train_time"] = seconds
    print(f"{method} seed {seed}: mIoU {metrics['miou']:.3f}, tail IoU "
          f"{metrics['tail_iou']:.3f}, balanced pixel acc "
          f"{metrics['balanced_pixel_accuracy']:.3f}, {seconds:.1f} s", flush=True)
    return {"method": method, "seed": seed, "settings": config, "metrics": metrics,
            "iou": [None if np.isnan(v) else float(v) for v in iou],
            "train_pixels": train_pixels.tolist(), "images_per_epoch": seen,
            "plot_masks": _encode(test_pred[picks])}


def per_class_rows(records, class_names, methods):
    rows = []
    first = next(iter(records))
    for c, name in enumerate(class_names):
        row = {"class": f"{c} {name}", "seeds": 1,
               "train_pixels": int(first["train_pixels"][c])}
        for method in methods:
            values = [r["iou"][c] for r in records
                      if r["method"] == method and r["iou"][c] is not None]
            row[method] = float(np.mean(values)) if values else None
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
