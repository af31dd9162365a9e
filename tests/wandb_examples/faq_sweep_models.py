# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I best log models from runs in a sweep?": one model artifact for the sweep,
# whose versions are the sweep's runs. The page shows only the constructor
# (`wandb.Artifact(name="sweep_name", type="model")`); the sweep around it is written as
# W&B's sweep pages write one (wandb.sweep, wandb.agent with a train function).
# Changed: `import wandb` only. Prints the sweep's id on its last line, for the next
# example ("How do I find an artifact from the best run in a sweep?").
import artisync as wandb

sweep_configuration = {
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
}


def train():
    with wandb.init() as run:
        lr = wandb.config.lr
        val_acc = 1.0 - abs(lr - 0.01)
        run.log({"val_acc": val_acc})
        with open("model.txt", "w") as f:
            f.write(f"model trained with lr={lr}\n")
        artifact = wandb.Artifact(name="sweep_name", type="model")
        artifact.add_file("model.txt")
        run.log_artifact(artifact)


sweep_id = wandb.sweep(sweep=sweep_configuration, project="sweep-models")
wandb.agent(sweep_id, function=train, count=3)
print(sweep_id)
