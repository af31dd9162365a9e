# A random-search sweep as W&B's "Define a sweep configuration" page writes one:
# distributions with min/max, a fixed value, a list of values.
import artisync as wandb

sweep_configuration = {
    "method": "random",
    "metric": {"goal": "minimize", "name": "loss"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "dropout": {"min": 0.0, "max": 0.5},
        "batch_size": {"values": [16, 32, 64]},
        "optimizer": {"value": "adam"},
    },
}


def train(config=None):
    with wandb.init(config=config):
        config = wandb.config
        loss = config.learning_rate * 10 + config.dropout
        wandb.log({"loss": loss})


sweep_id = wandb.sweep(sweep_configuration, project="sweep-random")
wandb.agent(sweep_id, train, count=3)
print(sweep_id)
