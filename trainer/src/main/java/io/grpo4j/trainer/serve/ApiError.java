package io.grpo4j.trainer.serve;

/**
 * A request the server refuses, reported as OpenAI does: HTTP status plus
 * {@code {"error": {"message", "type", "param", "code"}}}.
 */
public final class ApiError extends RuntimeException {
  private final int status;
  private final String type;
  private final String param;

  public ApiError(int status, String type, String param, String message) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param;
  }

  /** 400 naming the offending request field. */
  public static ApiError invalid(String param, String message) {
    return new ApiError(400, "invalid_request_error", param, message);
  }

  public int status() {
    return status;
  }

  public String type() {
    return type;
  }

  public String param() {
    return param;
  }
}
