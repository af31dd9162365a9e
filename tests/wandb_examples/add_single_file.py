# W&B docs, "Create an artifact" (https://docs.wandb.ai/guides/artifacts/construct-an-artifact),
# section "Add files to an artifact" > "Add a single file": every call the section shows
# (both versions of the page), each in an artifact of its own so that each one's
# "Resulting artifact" can be checked.
# Changed: `import wandb` only. Filled in: "path/file.format" is path/file.txt; the page's
# snippets assume a run and an artifact, made here.
import artisync as wandb

with wandb.init(project="add-files", job_type="examples") as run:
    # Add a single file
    artifact = wandb.Artifact(name="single-file", type="dataset")
    artifact.add_file(local_path="path/file.txt")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="single-file-positional", type="dataset")
    artifact.add_file("path/file.txt")  # Added as `file.txt'
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="single-file-renamed", type="dataset")
    artifact.add_file(local_path="path/file.txt", name="new/path/file.txt")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="hello", type="dataset")
    artifact.add_file("hello.txt")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="hello-renamed", type="dataset")
    artifact.add_file(local_path="hello.txt", name="new/path/hello_world.txt")
    run.log_artifact(artifact)

    # The page's table.
    artifact = wandb.Artifact(name="new-file", type="dataset")
    with artifact.new_file("hello.txt") as f:
        f.write("hello from new_file\n")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="model", type="model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="checkpoint", type="model")
    artifact.add_file("checkpoints/model.h5")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="model-renamed", type="model")
    artifact.add_file("model.h5", name="models/mymodel.h5")
    run.log_artifact(artifact)
