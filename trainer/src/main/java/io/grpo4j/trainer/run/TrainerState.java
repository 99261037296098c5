package io.grpo4j.trainer.run;

import io.grpo4j.datasets.DataPosition;

/**
 * What a checkpoint needs besides weights and optimizer moments to continue exactly: the step, the data position,
 * the optimizer's step count, and when the reference model was last synced (0 = never: it is the initial model).
 * Sampling seeds derive from (seed, step), so no RNG state has to be stored.
 */
public record TrainerState(long step, DataPosition dataPosition, long optimizerStep, int consecutiveSkips,
    long refSyncedStep) {}
