# Reading results back through the public API, as W&B's "Import and export data" page
# does: Api().runs of a project, each run's config, summary and history, the artifacts it
# logged and who used them. Prints one JSON line that the test compares with what the
# training script logged.
import json

import artisync as wandb

api = wandb.Api()
runs = api.runs("ml-team/mnist-training")

report = []
for run in runs:
    history = run.history(pandas=False)
    artifacts = []
    for artifact in run.logged_artifacts():
        artifacts.append(
            {
                "name": artifact.name,
                "version": artifact.version,
                "aliases": sorted(artifact.aliases),
                "logged_by": artifact.logged_by().id,
                "used_by": [r.id for r in artifact.used_by()],
            }
        )
    report.append(
        {
            "id": run.id,
            "name": run.name,
            "tags": list(run.tags),
            "config": dict(run.config),
            "summary": {k: v for k, v in run.summary.items() if not k.startswith("_")},
            "history": [{k: v for k, v in row.items() if not k.startswith("_")} for row in history],
            "steps": [row["_step"] for row in history],
            "artifacts": artifacts,
        }
    )

best = api.runs(
    "ml-team/mnist-training", filters={"config.architecture": "CNN"}, order="-summary_metrics.acc"
)
print(json.dumps({"runs": report, "best": best[0].id}))
