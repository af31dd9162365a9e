# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How can I find the artifacts logged or consumed by a run? How can I find the runs that
# produced or consumed an artifact?", tab "From a Run".
# Changed: `import wandb` only. Filled in: "entity/project/run_id" is the consumer run
# of the pipeline the test logs first. The last lines are not the page's: they print
# what the test checks.
import json

import artisync as wandb

api = wandb.Api()

run = api.run("ml-team/project/consumer")

# Walk down the graph from a run:
produced_artifacts = run.logged_artifacts()
# Walk up the graph from a run:
consumed_artifacts = run.used_artifacts()

# Walk up the graph from an artifact:
earlier_run = consumed_artifacts[0].logged_by()
# Walk down the graph from an artifact:
consumer_runs = produced_artifacts[0].used_by()

# -- not from the page: what the test checks --
print(
    json.dumps(
        {
            "produced_artifacts": [a.name for a in produced_artifacts],
            "consumed_artifacts": [a.name for a in consumed_artifacts],
            "earlier_run": earlier_run.id,
            "consumer_runs": [r.id for r in consumer_runs],
        }
    )
)
