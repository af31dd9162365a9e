# A new version made from an existing one, as W&B's "Update an artifact" page does
# outside a training loop: api.artifact(...).new_draft(), change the draft, log it.
import artisync as wandb

with open("test.csv", "w") as f:
    f.write("pixel_sum,label\n3,3\n")

api = wandb.Api()
artifact = api.artifact("ml-team/mnist-data/mnist-raw:latest")
draft = artifact.new_draft()
draft.add_file("test.csv")
draft.remove("val.csv")
draft.metadata["sizes"]["test"] = 1

with wandb.init(project="mnist-data", job_type="add-test-split") as run:
    run.log_artifact(draft)
