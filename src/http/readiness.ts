/** What readiness depends on. */
export interface ReadinessState {
  /** What start-up still waits for (NATS, JetStream), or undefined once started. */
  starting(): string | undefined;
  /** Shutdown began (SIGTERM or stop). */
  stopping(): boolean;
  natsConnected(): boolean;
  /** False while the gateway drains; undefined without a gateway. */
  gatewayAccepting(): boolean | undefined;
  /** True while memory is above gateway.memoryWatermarkBytes; undefined without a gateway. */
  memoryHigh(): boolean | undefined;
}

/** Why the process should not get traffic now (`/readyz` answers 503 with it), or undefined when ready. */
export function readinessRule(state: ReadinessState): () => string | undefined {
  return () => {
    const starting = state.starting();
    if (starting !== undefined) return starting;
    if (state.stopping()) return 'shutting down';
    if (!state.natsConnected()) return 'nats disconnected';
    if (state.gatewayAccepting() === false) return 'gateway draining';
    if (state.memoryHigh() === true) return 'memory above the watermark';
    return undefined;
  };
}
