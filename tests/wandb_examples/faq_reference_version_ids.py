# W&B docs, "Artifacts FAQs" (https://docs.wandb.ai/guides/artifacts/artifacts-faqs),
# "Reference Artifact FAQs" > "How can I fetch these Version IDs and ETags in W&B?".
# Changed: `import wandb` only. Filled in: the `run` the snippet uses; the test logs
# "my_table" first, as references to objects of its versioned S3 bucket. The page's
# snippet reads `manifest_entry.extra` where it means `entry.extra` (a NameError as
# written, in W&B too): corrected. The last lines are not the page's: they print what
# the test checks.
import json

import artisync as wandb

run = wandb.init(project="reference-faq")

found = {}
artifact = run.use_artifact("my_table:latest")
for entry in artifact.manifest.entries.values():
    versionID = entry.extra.get("versionID")
    etag = entry.extra.get("etag")
    found[entry.path] = {"versionID": versionID, "etag": etag}  # not from the page

run.finish()
print(json.dumps(found))
