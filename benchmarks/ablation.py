"""Which translator loss terms help: train one translator per combination of the semantic
(CyCADA) and PatchNCE (CUT) terms, same data, seed and steps, then score each on held-out
real frames.

    python benchmarks/ablation.py --sim out/r9 --real ../shared/data/real/endoscapes-dev \
        --split runs/exp9/split.json --segmenter runs/exp9/c/seed0 --out runs/ablation \
        --config small --steps 800 --threads 1

Per combination (``OUT/<name>/``): ``sim2real train`` on the split's training videos only
(``--videos @SPLIT``), ``sim2real translate -k 1`` of one shard of the renders, and
``sim2real evaluate`` against the *held-out* videos (``--exclude-videos @SPLIT``) with a
real-trained ``--segmenter`` (semantic consistency: its Dice against the renders' labels on
the translations; the same on the untranslated renders is the baseline). Finished steps are
reused. Prints one Markdown table and writes ``OUT/ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

COMBOS = {  # name: (loss.semantic, loss.nce)
    "neither": (0, 0),
    "semantic": (1, 0),
    "nce": (0, 1),
    "both": (1, 1),
}


def sh(args: list[str]) -> float:
    print("$ sim2real " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sim2real.cli", *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", required=True)
    ap.add_argument("--real", required=True, help="real folder (images/, masks/ ignored)")
    ap.add_argument("--split", required=True, help="split.json of 'sim2real experiment' (train/held-out videos)")
    ap.add_argument("--segmenter", required=True, help="segmenter trained on real frames (consistency judge)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="small")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--shard", default="0/4", help="renders translated and scored (translate --shard)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=",".join(COMBOS), help="comma list of combinations to run")
    a = ap.parse_args()
    out = Path(a.out)
    rows = {}
    for name in a.only.split(","):
        sem, nce = COMBOS[name]
        run = out / name
        timing_path = run / "ablation_timing.json"
        timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
        if "train_s" not in timing:
            args = ["train", "--sim", a.sim, "--real", a.real, "--videos", f"@{a.split}", "--out", str(run),
                    "--max-iter", str(a.steps), "--threads", str(a.threads)]
            if (run / "checkpoint.pt").is_file():
                args.append("--resume")  # an interrupted run continues with the config it stored
            else:
                args += ["--config", a.config, "--set", f"loss.semantic={sem}", "--set", f"loss.nce={nce}"]
            timing["train_s"] = sh(args)  # a resumed run: the resumed part only
            timing_path.write_text(json.dumps(timing))
        tr = run / "translated"
        if not (tr / "evaluation.json").is_file():
            sh(["translate", "--checkpoint", str(run), "--data", a.sim, "--out", str(tr), "-k", "1",
                "--shard", a.shard, "--threads", str(a.threads)])
            sh(["evaluate", "--data", str(tr), "--real", a.real, "--exclude-videos", f"@{a.split}",
                "--segmenter", a.segmenter, "--threads", str(a.threads)])
        ev = json.loads((tr / "evaluation.json").read_text())
        rows[name] = {"semantic": sem, "nce": nce, "steps": a.steps, "train_s": round(timing["train_s"], 1),
                      "msssim": ev["structure"]["msssim_gray_mean"],
                      "two_sample": ev["realism"]["two_sample_accuracy_translated"]["accuracy"],
                      "two_sample_centre": ev["realism"]["two_sample_accuracy_translated_centre"]["accuracy"],
                      "two_sample_renders": ev["realism"]["two_sample_accuracy_untranslated"]["accuracy"],
                      "two_sample_renders_centre": ev["realism"]["two_sample_accuracy_untranslated_centre"]["accuracy"],
                      "two_sample_stderr": ev["realism"]["two_sample_accuracy_translated"]["stderr"],
                      "consistency": ev["consistency"]["translated"],
                      "consistency_renders": ev["consistency"]["untranslated"],
                      "n_variants": ev["n_variants"], "n_real_frames": ev["n_real_frames"]}
    (out / "ablation.json").write_text(json.dumps(rows, indent=1))
    first = next(iter(rows.values()))  # the fields every row shares (the renders' baseline, sizes)
    print(f"\n{first['n_variants']} variants (one per render) vs {first['n_real_frames']} held-out real frames; "
          f"two-sample standard error ~{first['two_sample_stderr']:.3f}")
    classes = [c for c in first["consistency"] if c != "mean"]
    print(f"\n| terms (semantic, PatchNCE) | steps | train s | MS-SSIM | two-sample whole / centre | "
          + " | ".join(f"{c} consistency" for c in classes) + " |")
    print("|---|---|---|---|---|" + "---|" * len(classes))
    print("| untranslated renders | - | - | 1 | "
          f"{first['two_sample_renders']:.3f} / {first['two_sample_renders_centre']:.3f} | "
          + " | ".join(f"{first['consistency_renders'][c]:.3f}" for c in classes) + " |")
    for name, r in rows.items():
        print(f"| {name} ({r['semantic']}, {r['nce']}) | {r['steps']} | {r['train_s']:.0f} | {r['msssim']:.3f} | "
              f"{r['two_sample']:.3f} / {r['two_sample_centre']:.3f} | "
              + " | ".join(f"{r['consistency'][c]:.3f}" for c in classes) + " |")


if __name__ == "__main__":
    main()
