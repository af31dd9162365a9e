# W&B docs, "Create an artifact" (https://docs.wandb.ai/models/artifacts/construct-an-artifact),
# section "Construct an artifact", the warning on calling log_artifact in a loop.
# Changed: `import wandb` only. Filled in: "# ... add files to artifact a ..." with one
# small file. W&B warns that v0 may not hold index 0; artisync keeps log order, so the
# test checks that vN holds index N.
import artisync as wandb

with wandb.init() as run:
    for i in range(10):
        a = wandb.Artifact(
            name="race",
            type="dataset",
            metadata={
                "index": i,
            },
        )
        # ... add files to artifact a ...
        with a.new_file("index.txt") as f:
            f.write(f"{i}\n" * (10 - i) * 100)
        run.log_artifact(a)
