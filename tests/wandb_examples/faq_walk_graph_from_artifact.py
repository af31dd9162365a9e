# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How can I find the artifacts logged or consumed by a run? How can I find the runs that
# produced or consumed an artifact?", tab "From an Artifact".
# Changed: `import wandb` only ("project/artifact:alias" are valid names as they stand;
# the test logs a small pipeline around that version first). The last lines are not
# the page's: they print what the test checks.
import json

import artisync as wandb

api = wandb.Api()

artifact = api.artifact("project/artifact:alias")

# Walk up the graph from an artifact:
producer_run = artifact.logged_by()
# Walk down the graph from an artifact:
consumer_runs = artifact.used_by()

# Walk down the graph from a run:
next_artifacts = consumer_runs[0].logged_artifacts()
# Walk up the graph from a run:
previous_artifacts = producer_run.used_artifacts()

# -- not from the page: what the test checks --
print(
    json.dumps(
        {
            "producer_run": producer_run.id,
            "consumer_runs": [r.id for r in consumer_runs],
            "next_artifacts": [a.name for a in next_artifacts],
            "previous_artifacts": [a.name for a in previous_artifacts],
        }
    )
)
