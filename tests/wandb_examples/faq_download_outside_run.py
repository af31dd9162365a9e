# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "How do I log an artifact without launching a run? How do I download an artifact
# outside of a run?" (in the page's earlier versions): the public-API script.
# The answer's other two snippets are shell commands of W&B's CLI (`wandb artifact put`
# and `wandb artifact get`), not Python: changing an import does not reach them
# (artisync's own commands for this are `artisync log` and `artisync get`).
# Changed: `import wandb` only; the placeholders "project", "artifact" and "alias" are
# valid names as they stand, and the test logs that version first. The last lines are
# not the page's: they print what the test checks.
import json

import artisync as wandb

api = wandb.Api()

artifact = api.artifact("project/artifact:alias")
artifact_dir = artifact.checkout()

# -- not from the page: what the test checks --
print(json.dumps({"artifact_dir": str(artifact_dir)}))
