# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I find an artifact from the best run in a sweep?".
# Changed: `import wandb` only. Filled in: "entity/project/sweep_id" is the sweep the
# previous example (faq_sweep_models.py) ran, given by the test.
import os

import artisync as wandb

SWEEP_PATH = os.environ["EXAMPLE_SWEEP_PATH"]  # the page's "entity/project/sweep_id"

api = wandb.Api()
sweep = api.sweep(SWEEP_PATH)
runs = sorted(sweep.runs, key=lambda run: run.summary.get("val_acc", 0), reverse=True)
best_run = runs[0]
for artifact in best_run.logged_artifacts():
    artifact_path = artifact.download()
    print(artifact_path)
