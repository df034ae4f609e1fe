"""The render job: plan, workers, shards, resume (:mod:`.job`); the commands (:mod:`.cli`).
Render passes -> data-set arrays and the camera effects live one layer down, in :mod:`sim2real.imaging`."""
