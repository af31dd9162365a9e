# A hyperparameter sweep as W&B's sweeps quickstart writes it: a sweep configuration
# (method, metric, parameters), wandb.sweep(), wandb.agent() calling a train function,
# and the public API's best_run() at the end.
import artisync as wandb

sweep_configuration = {
    "method": "grid",
    "name": "lr-grid",
    "metric": {"goal": "maximize", "name": "val_acc"},
    "parameters": {
        "lr": {"values": [0.1, 0.01, 0.001]},
        "epochs": {"value": 2},
    },
}


def train():
    run = wandb.init()
    lr = wandb.config.lr
    for epoch in range(wandb.config.epochs):
        val_acc = 0.9 - abs(lr - 0.01) - 0.1 / (epoch + 1)
        wandb.log({"epoch": epoch, "val_acc": val_acc})
    run.finish()


sweep_id = wandb.sweep(sweep=sweep_configuration, project="sweep-demo")
wandb.agent(sweep_id, function=train, count=3)

api = wandb.Api()
sweep = api.sweep(f"ml-team/sweep-demo/{sweep_id}")
best_run = sweep.best_run()
print(f"best run {best_run.id} with lr={best_run.config['lr']}")
print(sweep_id)
