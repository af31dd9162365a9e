# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I clean up unused artifact versions?" (in the page's earlier versions).
# Changed: `import wandb` only. Filled in: "... # fill in the desired type + name".
# The test logs three versions of capsule-gpt's gpt-checkpoints under entity geoff first.
import artisync as wandb

# When using artifact api methods that don't have an entity or project
#  argument, you must provide that information when instantiating the wandb.Api
api = wandb.Api(overrides={"project": "capsule-gpt", "entity": "geoff"})

artifact_type, artifact_name = "model", "gpt-checkpoints"  # fill in the desired type + name
for version in api.artifact_versions(artifact_type, artifact_name):
    # Clean up all versions that don't have an alias such as 'latest'.
    # NOTE: You can put whatever deletion logic you want here.
    if len(version.aliases) == 0:
        version.delete()
