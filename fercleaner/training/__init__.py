"""Training: the trainer loop, batched augmentation, schedules, checkpoints, DDP and dynamics."""
