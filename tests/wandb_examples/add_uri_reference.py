# W&B docs, "Create an artifact" (https://docs.wandb.ai/guides/artifacts/construct-an-artifact),
# section "Add files to an artifact" > "Add a URI reference": the generic snippet and
# every row of the table, each row in an artifact of its own.
# Changed: `import wandb` only. Filled in: the "uri" of the generic snippet is a file on
# the test's HTTP server; "my-bucket" is the test's S3 bucket (moto); the run the snippets
# assume. The page lists gs:// too but shows no call with it.
import os

import artisync as wandb

BUCKET = os.environ["EXAMPLE_S3_BUCKET"]  # the page's "my-bucket"
URI = os.environ["EXAMPLE_HTTP_URL"]  # the page's "uri"

with wandb.init(project="add-references", job_type="examples") as run:
    # Add a URI reference
    artifact = wandb.Artifact(name="http-reference", type="dataset")
    artifact.add_reference(uri=URI, name="optional-name")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="s3-model", type="model")
    artifact.add_reference(f"s3://{BUCKET}/model.h5")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="s3-checkpoint", type="model")
    artifact.add_reference(f"s3://{BUCKET}/checkpoints/model.h5")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="s3-model-renamed", type="model")
    artifact.add_reference(f"s3://{BUCKET}/model.h5", name="models/mymodel.h5")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="s3-images", type="dataset")
    artifact.add_reference(f"s3://{BUCKET}/images")
    run.log_artifact(artifact)

    artifact = wandb.Artifact(name="s3-images-named", type="dataset")
    artifact.add_reference(f"s3://{BUCKET}/images", name="images")
    run.log_artifact(artifact)
