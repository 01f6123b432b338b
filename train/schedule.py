"""AdamW with one warm-up epoch then cosine decay: from-scratch CNNs diverge without the warm-up."""

import keras


def adamw(lr, weight_decay, steps_per_epoch, epochs):
    schedule = keras.optimizers.schedules.CosineDecay(
        lr * 0.1, decay_steps=max(1, steps_per_epoch * (epochs - 1)), warmup_target=lr,
        warmup_steps=steps_per_epoch)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
