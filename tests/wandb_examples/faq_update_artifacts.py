# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I programmatically update artifacts?" (in the page's earlier versions).
# Changed: `import wandb` only. The test logs car-vision-project/bike-dataset first.
import artisync as wandb

api = wandb.Api()
artifact = api.artifact("car-vision-project/bike-dataset:latest")

# Update the description
artifact.description = "My new description"

# Selectively update metadata keys
artifact.metadata["oldKey"] = "new value"

# Replace the metadata entirely
artifact.metadata = {"newKey": "new value"}

# Add an alias
artifact.aliases.append("best")
# Remove an alias
artifact.aliases.remove("latest")

# Completely replace the aliases
artifact.aliases = ["replaced"]

# Persist all artifact modifications
artifact.save()
