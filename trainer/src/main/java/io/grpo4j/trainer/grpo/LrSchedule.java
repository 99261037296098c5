package io.grpo4j.trainer.grpo;

/** Linear warmup, then constant, linear decay or cosine decay to {@code minLrRatio * lr} at the last step. */
public record LrSchedule(String type, double lr, int warmupSteps, int totalSteps, double minLrRatio) {
  /** Learning rate for 1-based step {@code step}. */
  public double at(int step) {
    if (warmupSteps > 0 && step <= warmupSteps) {
      return lr * step / warmupSteps;
    }
    int decaySteps = Math.max(1, totalSteps - warmupSteps);
    double progress = Math.min(1.0, Math.max(0.0, (step - warmupSteps) / (double) decaySteps));
    double floor = lr * minLrRatio;
    return switch (type) {
      case "constant" -> lr;
      case "linear" -> floor + (lr - floor) * (1 - progress);
      case "cosine" -> floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
      default -> throw new IllegalArgumentException("schedule.type \"" + type + "\" is not constant | linear | cosine");
    };
  }
}
