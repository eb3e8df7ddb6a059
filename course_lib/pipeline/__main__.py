"""``python -m course_lib.pipeline --profile cpu``: run Sakura Sushi's pipeline, building only what is missing or stale.

``--plan`` only says which stages would be built and which reused. A finished
run prints each stage's status and time, the candidates' scores, and where the
shipped model folder is.
"""

import argparse
import sys

import pandas as pd

from course_lib.core.environment import setup
from course_lib.pipeline.sakura import SakuraPipeline, load_scores, record_scores, sakura_stages
from course_lib.pipeline.stages import plan, run_stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="cpu or gpu (default: follow the hardware)")
    parser.add_argument("--plan", action="store_true", help="say what would be built, build nothing")
    args = parser.parse_args(argv)
    profile = setup(args.profile, verbose=not args.plan)
    stages = sakura_stages(SakuraPipeline.from_profile(profile), profile)
    if args.plan:
        for name, action in plan(stages).items():
            print(f"{name:<12} {action}")
        return 0
    runs = run_stages(stages)
    print(pd.DataFrame([{"stage": r.name, "status": r.status, "seconds": r.seconds} for r in runs]).to_string(index=False))
    folders = {run.name: run.folder for run in runs}
    record_scores(folders["sakura-eval"], profile)
    scores = load_scores(folders["sakura-eval"])
    print(pd.DataFrame({name: {"fact accuracy": s["fact_accuracy"]["value"], "memory (MB)": s["memory_mb"],
                               "tokens per second": s["tokens_per_second"]} for name, s in scores.items()}).T)
    print(f"shipped model: {folders['sakura-ship'] / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
