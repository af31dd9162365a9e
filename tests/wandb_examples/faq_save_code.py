# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I save code?": `save_code=True` in wandb.init, and the code as an artifact.
# Changed: `import wandb` only. Filled in: the run the answer starts with
# (wandb.init(save_code=True)), and a name: the page writes wandb.Artifact(type="code"),
# which wandb 0.31 itself rejects (TypeError: missing the required argument 'name').
import artisync as wandb

wandb.init(project="save-code", save_code=True)

code_artifact = wandb.Artifact(name="train-code", type="code")
code_artifact.add_file("./train.py")
wandb.log_artifact(code_artifact)
