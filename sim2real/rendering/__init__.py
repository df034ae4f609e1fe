"""The render job: plan, workers, shards, resume (:mod:`.job`); render passes -> data-set arrays
(:mod:`.postprocess`); image-only camera effects (:mod:`.camera_effects`); the commands (:mod:`.cli`)."""
