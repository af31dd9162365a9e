# W&B docs, "Create an artifact" (https://docs.wandb.ai/models/artifacts/construct-an-artifact),
# section "Find path for logged artifacts and other metadata".
# NOT RUN by the tests: it lists a run's *files* (what wandb.save() and the run's
# console/config uploads put beside a run on W&B's server, with their bucket URLs):
# W&B's run-file storage, which artisync does not have (it versions artifacts; a run
# keeps its config, summary and history in the registry). With the imports changed to
# artisync this stops at its first line (no module artisync.apis). Kept as the page
# gives it, bugs included: `api` is never defined (the page means the Api object).
from artisync.apis.public.api import Api
from artisync.apis.public.files import Files

# Example run object
run = Api().run("[ENTITY/PROJECT/RUN-ID]")

# Create a Files object to iterate over files in the run
files = Files(api.client, run)  # noqa: F821 - the page's own undefined name

# Iterate over files
for file in files:
    print(f"File Name: {file.name}")
    print(f"File URL: {file.url}")
    print(f"Path to file in the bucket: {file.direct_url}")
