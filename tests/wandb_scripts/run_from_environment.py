# A script that leaves everything to the environment, as scripts launched by a cluster
# scheduler or by W&B's Launch do: wandb.init() with no arguments; WANDB_PROJECT,
# WANDB_RUN_GROUP, WANDB_JOB_TYPE, WANDB_RUN_ID, WANDB_RESUME and WANDB_MODE decide the
# rest. Run once, then again with WANDB_RESUME=must to continue the same run.
import artisync as wandb

run = wandb.init(config={"seed": 7})
start = run.summary.get("epochs_done", 0)
for epoch in range(start, start + 3):
    wandb.log({"epoch": epoch, "loss": 1.0 / (epoch + 1)})
run.summary["epochs_done"] = start + 3

artifact = wandb.Artifact("env-model", type="model")
with artifact.new_file("weights.txt") as f:
    f.write(f"weights after {start + 3} epochs\n")
run.log_artifact(artifact)
wandb.finish()
