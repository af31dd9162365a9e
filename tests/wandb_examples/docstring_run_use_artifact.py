# wandb 0.31.0's own docstring example of Run.use_artifact (wandb/sdk/wandb_run.py):
# the four ways to name the artifact a run uses.
# Changed: `import wandb` only. Filled in: <example> is the project "example";
# <name> "mnist", <alias> "best", <version> 1, <entity> the test's entity, <project>
# "example"; the test logs mnist v0 and v1 (v0 aliased best) first.
import artisync as wandb

run = wandb.init(project="example")

# Use an artifact by name and alias
artifact_a = run.use_artifact(artifact_or_name="mnist:best")

# Use an artifact by name and version
artifact_b = run.use_artifact(artifact_or_name="mnist:v1")

# Use an artifact by entity/project/name:alias
artifact_c = run.use_artifact(artifact_or_name="ml-team/example/mnist:best")

# Use an artifact by entity/project/name:version
artifact_d = run.use_artifact(artifact_or_name="ml-team/example/mnist:v1")

# Explicitly finish the run since a context manager is not used.
run.finish()
