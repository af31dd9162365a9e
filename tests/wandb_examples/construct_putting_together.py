# W&B docs, "Create an artifact" (https://docs.wandb.ai/models/artifacts/construct-an-artifact),
# section "Construct an artifact", the snippet after "Putting this all together".
# Changed: `import wandb` only. Filled in: the [NAME], [TYPE], [PROJECT] and [JOB-TYPE]
# placeholders (the file and the directory get different names, or they would clash).
import artisync as wandb

artifact = wandb.Artifact(name="my-dataset", type="dataset")
artifact.add_file(local_path="path/to/file.txt", name="notes/file.txt")
artifact.add_dir(local_path="path/to/directory", name="directory")

with wandb.init(project="putting-together", job_type="upload") as run:
    run.log_artifact(artifact)
