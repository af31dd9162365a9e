# W&B docs, "Create an artifact" (https://docs.wandb.ai/guides/artifacts/construct-an-artifact),
# section "How to construct an artifact": steps 1 (create the object), 2 (add a file) and
# 3 (save it with a run), as that version of the page gives them.
# Changed: `import wandb` only. Filled in: the "<replace>" name and type.
# The page never calls run.finish(): the run ends when the script exits.
import artisync as wandb

artifact = wandb.Artifact(name="hello-world", type="dataset")

artifact.add_file(local_path="hello_world.txt", name="optional-name")

# Create a W&B Run. Replace 'job-type'.
run = wandb.init(project="artifacts-example", job_type="job-type")

run.log_artifact(artifact)
