"""The data-set format: one writer (render samples and translated variants), the reader,
verify and a torch ``Dataset`` (:mod:`.format`); joint transforms for it (:mod:`.transforms`,
imported on use: it needs torch); COCO export (:mod:`.coco`); contact sheets (:mod:`.preview`)."""

from .coco import export_coco
from .tips import instrument_tips
from .format import (CONVENTIONS, FILES, FORMAT_NAME, FORMAT_VERSION, LABEL_KEYS, Dataset, DatasetWriter, Sample,
                     class_pixel_counts, open_dataset, sample_id, torch_dataset, verify, verify_sample,
                     write_render_files)

__all__ = ["CONVENTIONS", "FILES", "FORMAT_NAME", "FORMAT_VERSION", "LABEL_KEYS", "Dataset", "DatasetWriter", "Sample",
           "class_pixel_counts", "export_coco", "instrument_tips", "open_dataset", "sample_id", "torch_dataset",
           "verify", "verify_sample", "write_render_files"]
