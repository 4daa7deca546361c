"""Fine-tuning: the config resolved, the phases, the distributed steps, the loop, checkpoints,
reporting, and a trained model restored from its workdir."""
