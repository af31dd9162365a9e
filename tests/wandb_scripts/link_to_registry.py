# Publishing a model to the model registry as W&B's registry tutorial does:
# run.link_artifact(artifact, "model-registry/<collection>", aliases=[...]) from the
# training run, then a reader fetches it by the registry alias, and a later promotion
# links the same version again under another alias with Artifact.link().
import artisync as wandb

with wandb.init(project="classifier", job_type="train") as run:
    with open("model.pt", "wb") as f:
        f.write(b"classifier weights" * 50)
    artifact = wandb.Artifact("classifier-weights", type="model")
    artifact.add_file("model.pt")
    run.log_artifact(artifact)
    run.link_artifact(artifact, "model-registry/Classifier", aliases=["staging"])

api = wandb.Api()
staged = api.artifact("model-registry/Classifier:staging")
print(f"staged {staged.name} ({staged.version})")
model_dir = staged.download()

# Promotion, later: the version that was staged goes to production too.
source = api.artifact("classifier/classifier-weights:latest")
source.link("model-registry/Classifier", aliases=["production"])
