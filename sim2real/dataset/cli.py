"""The ``sim2real coco`` command (COCO instance annotations of a data set)."""

from __future__ import annotations

import click


@click.command()
@click.argument("dataset", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="export folder (images/ and annotations/)")
@click.option("--val-fraction", default=0.2, show_default=True, type=float,
              help="share of renders in the val split (all variants of a render go together)")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the split")
def coco(dataset, out, val_fraction, seed):
    """Write COCO instance annotations (RLE masks, tool-tip keypoints, camera K) of a data set.

    Renders and translated sets alike: OUT/images/ (hard links) and
    OUT/annotations/instances_{train,val}.json. A rerun refreshes the annotations and keeps
    the images already there.

    Example: sim2real coco data/sim --out data/sim-coco --val-fraction 0.2
    """
    from .coco import check_export, export_coco, require_pycocotools
    from ..progress import Progress

    require_pycocotools()
    n = len(check_export(dataset, out, val_fraction))
    with Progress(n, "coco", unit="samples") as bar:
        s = export_coco(dataset, out, val_fraction=val_fraction, seed=seed, progress=bar)
    click.echo(f"coco: {s['images']} images (train {s['train']}, val {s['val']}), {s['annotations']} annotations, "
               f"{s['keypoints_visible']} visible tool tips; images linked {s['linked']}, copied {s['copied']}, "
               f"kept {s['kept']} -> {out}", err=True)


commands = [coco]
