/** What readiness depends on. */
export interface ReadinessState {
  /** What start-up still waits for (NATS, JetStream), or undefined once started. */
  starting(): string | undefined;
  /** Shutdown began (SIGTERM or stop). */
  stopping(): boolean;
  natsConnected(): boolean;
  /** False while the gateway drains; undefined without a gateway. */
  gatewayAccepting(): boolean | undefined;
}

/** Why the process should not get traffic now (`/readyz` answers 503 with it), or undefined when ready. */
export function readinessRule(state: ReadinessState): () => string | undefined {
  return () => {
    const starting = state.starting();
    if (starting !== undefined) return starting;
    if (state.stopping()) return 'shutting down';
    if (!state.natsConnected()) return 'nats disconnected';
    if (state.gatewayAccepting() === false) return 'gateway draining';
    return undefined;
  };
}
