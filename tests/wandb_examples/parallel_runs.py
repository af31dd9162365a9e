# W&B docs, "Create an artifact" (https://docs.wandb.ai/guides/artifacts/construct-an-artifact),
# section "Add files to an artifact" > "Add files to artifacts from parallel runs"; the same
# code is the Artifacts FAQ's "How do I log an artifact with distributed processes?"
# (https://docs.wandb.ai/guides/artifacts/artifacts-faqs).
# Changed: `import wandb` only, and Ray: it is not installed here, and the page says
# "You can orchestrate your parallel runs however you want", so the writers run in a
# process pool instead (`ray.remote` -> a function, `train.remote(i)` -> `pool.submit`,
# `ray.get(ids)` -> waiting on the futures). The rest is the page's code.
import time
from concurrent.futures import ProcessPoolExecutor

import artisync as wandb

artifact_type = "dataset"
artifact_name = "parallel-artifact"
table_name = "distributed_table"
parts_path = "parts"
num_parallel = 5

# Each batch of parallel writers should have its own
# unique group name.
group_name = "writer-group-{}".format(round(time.time()))  # noqa: UP032 - the page's code


def train(i):
    """
    Our writer job. Each writer will add one image to the artifact.
    """
    with wandb.init(group=group_name) as run:
        artifact = wandb.Artifact(name=artifact_name, type=artifact_type)

        # Add data to a wandb table. In this case we use example data
        table = wandb.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])

        # Add the table to folder in the artifact
        artifact.add(table, "{}/table_{}".format(parts_path, i))  # noqa: UP032

        # Upserting the artifact creates or appends data to the artifact
        run.upsert_artifact(artifact)


with ProcessPoolExecutor(max_workers=num_parallel) as pool:
    # Launch your runs in parallel
    result_ids = [pool.submit(train, i) for i in range(num_parallel)]

    # Join on all the writers to make sure their files have
    # been added before finishing the artifact.
    for result in result_ids:
        result.result()

# Once all the writers are finished, finish the artifact
# to mark it ready.
with wandb.init(group=group_name) as run:
    artifact = wandb.Artifact(artifact_name, type=artifact_type)

    # Create a "PartitionTable" pointing to the folder of tables
    # and add it to the artifact.
    artifact.add(wandb.data_types.PartitionedTable(parts_path), table_name)

    # Finish artifact finalizes the artifact, disallowing future "upserts"
    # to this version.
    run.finish_artifact(artifact)
