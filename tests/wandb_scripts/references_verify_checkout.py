# A dataset that lives in S3, tracked by reference as W&B's "Track external files" page
# does, then used by a training run that downloads it, verifies it, and checks the
# directory out again after it was changed by hand.
import os

import artisync as wandb

BUCKET = os.environ["DATA_BUCKET"]  # the team's bucket ("s3://my-bucket/datasets/mnist")

with wandb.init(project="s3-datasets", job_type="register") as run:
    dataset = wandb.Artifact("mnist-s3", type="dataset")
    dataset.add_reference(f"s3://{BUCKET}/datasets/mnist")
    with open("labels.csv", "w") as f:
        f.write("name,label\ncat.png,0\ndog.png,1\n")
    dataset.add_file("labels.csv")
    run.log_artifact(dataset)

with wandb.init(project="s3-datasets", job_type="train") as run:
    dataset = run.use_artifact("mnist-s3:latest")
    data_dir = dataset.download()
    dataset.verify(data_dir)

    # Someone edits the download and leaves a stray file in it.
    with open(os.path.join(data_dir, "labels.csv"), "w") as f:
        f.write("edited by hand\n")
    with open(os.path.join(data_dir, "notes.txt"), "w") as f:
        f.write("stray\n")
    try:
        dataset.verify(data_dir)
    except ValueError as e:
        print(f"verify found a difference: {e}")
    else:
        raise SystemExit("verify did not notice the edited directory")

    data_dir = dataset.checkout(data_dir)
    dataset.verify(data_dir)
    print(data_dir)
