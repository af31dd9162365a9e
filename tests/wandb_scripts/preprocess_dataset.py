# The consumer side of a dataset, as W&B's examples write it: use_artifact(...).download(),
# read the files, and log what the step made as a new artifact (lineage follows).
import csv
import os

import artisync as wandb

with wandb.init(project="mnist-data", job_type="preprocess", config={"normalize": True}) as run:
    raw_data = run.use_artifact("mnist-raw:latest")
    raw_dir = raw_data.download()

    processed = wandb.Artifact(
        "mnist-preprocessed",
        type="dataset",
        description="MNIST with pixel sums scaled to [0, 1]",
        metadata={"normalize": wandb.config.normalize},
    )
    for split in ["train", "val"]:
        with open(os.path.join(raw_dir, f"{split}.csv")) as f:
            rows = list(csv.DictReader(f))
        with processed.new_file(f"{split}.csv") as out:
            writer = csv.writer(out)
            writer.writerow(["pixel", "label"])
            for row in rows:
                writer.writerow([int(row["pixel_sum"]) / 255, row["label"]])
        run.log({f"{split}_rows": len(rows)})
    run.log_artifact(processed)
