# W&B docs, "Create an artifact" (https://docs.wandb.ai/guides/artifacts/construct-an-artifact),
# section "Add files to an artifact" > "Add multiple files": the snippet and the table,
# each call in an artifact of its own so that each "Resulting artifact" can be checked.
# Changed: `import wandb` only. Filled in: "path/file.format" (a directory there) is
# path/to/directory; the run the snippets assume.
import artisync as wandb

with wandb.init(project="add-files", job_type="examples") as run:
    # Recursively add a directory
    artifact = wandb.Artifact(name="prefixed-directory", type="dataset")
    artifact.add_dir(local_path="path/to/directory", name="optional-prefix")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="images", type="dataset")
    artifact.add_dir("images")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="images-named", type="dataset")
    artifact.add_dir("images", name="images")
    run.log_artifact(artifact)
