# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I delete an artifact with associated aliases?" (in the page's earlier versions).
# Changed: `import wandb` only. Filled in: the snippet's `run`, a public-API run, as the
# "Delete an artifact" page it links to makes it (api.run("entity/project/run_id")).
import artisync as wandb

api = wandb.Api()
run = api.run("ml-team/old-experiments/run-to-clean")

for artifact in run.logged_artifacts():
    artifact.delete(delete_aliases=True)
