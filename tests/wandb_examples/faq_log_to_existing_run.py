# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I log an artifact to an existing run?".
# Changed: `import wandb` only. The test makes the run "existing_run_id" first (in the
# default project, as the snippet names none) and a my_data/file.txt to add.
import artisync as wandb

with wandb.init(id="existing_run_id", resume="allow") as run:
    artifact = wandb.Artifact("artifact_name", "artifact_type")
    artifact.add_file("my_data/file.txt")
    run.log_artifact(artifact)
