"""One TrainTask per model; each is a thin adapter between the datasets and train.engine.fit."""
