# A training script written the way W&B's quickstart writes one: a run with a config and
# tags, metrics logged every epoch, a checkpoint logged as an artifact every few epochs
# with aliases, the best value in the summary, then wandb.finish().
import math
import os

import artisync as wandb

CHECKPOINT_EVERY = 2

run = wandb.init(
    project="mnist-training",
    config={
        "learning_rate": 0.02,
        "architecture": "CNN",
        "dataset": "MNIST",
        "epochs": 6,
        "batch_size": 64,
    },
    tags=["baseline", "cnn"],
    notes="first try at a CNN",
    job_type="train",
)

config = wandb.config
best_acc = 0.0
os.makedirs("checkpoints", exist_ok=True)
for epoch in range(config.epochs):
    # A stand-in for one epoch of training: numbers that move the way training does.
    loss = 2.0 * math.exp(-config.learning_rate * 20 * (epoch + 1))
    acc = 1.0 - loss / 2
    wandb.log({"epoch": epoch, "loss": loss, "acc": acc})

    if (epoch + 1) % CHECKPOINT_EVERY == 0:
        path = f"checkpoints/model-epoch{epoch}.pt"
        with open(path, "wb") as f:
            f.write(f"weights after epoch {epoch}".encode() * 100)
        aliases = [f"epoch-{epoch}"]
        if acc > best_acc:
            best_acc = acc
            aliases.append("best")
        checkpoint = wandb.Artifact(
            "mnist-cnn", type="model", metadata={"epoch": epoch, "acc": acc}
        )
        checkpoint.add_file(path, name="model.pt")
        run.log_artifact(checkpoint, aliases=aliases)

run.summary["best_acc"] = best_acc
wandb.finish()
