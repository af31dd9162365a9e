# mode="disabled", as W&B documents it for tests and debugging: every call succeeds and
# nothing is recorded. The whole usual flow runs: config, log, summary, artifacts, finish.
import artisync as wandb

run = wandb.init(project="never-recorded", mode="disabled", config={"lr": 0.1})
wandb.config.update({"batch_size": 8})
for step in range(3):
    wandb.log({"loss": 1.0 / (step + 1)})
run.summary["final"] = 1
artifact = wandb.Artifact("nothing", type="dataset")
with artifact.new_file("data.txt") as f:
    f.write("data\n")
run.log_artifact(artifact)
lr = wandb.config.lr
wandb.finish()
print(f"disabled run finished: config lr={lr}")
